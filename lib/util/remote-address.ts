import type { Socket } from 'node:net';

/** The peer as host:port ([host]:port for IPv6), for log lines; '?' once it is gone. */
export function remoteAddress(socket: Socket): string {
  const { remoteAddress: host, remotePort: port } = socket;
  if (host === undefined) return '?';
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
