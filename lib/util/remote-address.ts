import type { Socket } from 'node:net';

/** An address as a URL or a log line writes it: host:port, IPv6 in brackets. */
export function showAddress(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** The peer as host:port ([host]:port for IPv6), for log lines; '?' once it is gone. */
export function remoteAddress(socket: Socket): string {
  const { remoteAddress: host, remotePort: port } = socket;
  return host === undefined ? '?' : showAddress(host, port as number);
}
