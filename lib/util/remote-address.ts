import { type Socket, isIPv6 } from 'node:net';

/** An address as a URL or a log line writes it: host:port, IPv6 in brackets. */
export function showAddress(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** The peer as host:port ([host]:port for IPv6), for log lines; '?' once it is gone. */
export function remoteAddress(socket: Socket): string {
  const { remoteAddress: host, remotePort: port } = socket;
  return host === undefined ? '?' : showAddress(host, port as number);
}

/**
 * What a per-address limit counts a peer under: its IPv4 address (an IPv4-mapped IPv6
 * one unmapped), or for IPv6 its /64, since one host is commonly handed a whole /64 and
 * could otherwise take a limit's places under as many addresses as it likes.
 */
export function limitKey(address: string): string {
  if (!isIPv6(address)) return address;
  const lower = address.toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (mapped !== null) return mapped[1] as string;
  const groups = (part: string): string[] => (part === '' ? [] : part.split(':').flatMap((group) => (group.includes('.') ? ['0', '0'] : [group])));
  const [head = '', tail] = lower.split('::');
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const all = [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${all.slice(0, 4).map((group) => Number.parseInt(group, 16).toString(16)).join(':')}::/64`;
}
