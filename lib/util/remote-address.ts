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
 * What a per-address limit counts a peer under: its IPv4 address, including one carried
 * in IPv6 (IPv4-mapped ::ffff:0:0/96, or NAT64's 64:ff9b::/96, where every IPv4 client
 * of an IPv6-only server arrives), else for IPv6 its /64, since one host is commonly
 * handed a whole /64 and could otherwise take a limit's places under as many addresses
 * as it likes.
 */
export function limitKey(address: string): string {
  if (!isIPv6(address)) return address;
  const [head = '', tail] = address.toLowerCase().replace(/%.*$/, '').split('::');
  const groups = (part: string): number[] =>
    part === ''
      ? []
      : part.split(':').flatMap((group) => {
          if (!group.includes('.')) return [Number.parseInt(group, 16)];
          const [a = 0, b = 0, c = 0, d = 0] = group.split('.').map(Number);
          return [a * 256 + b, c * 256 + d];
        });
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const all = [...left, ...Array<number>(Math.max(0, 8 - left.length - right.length)).fill(0), ...right];
  const prefix = all.slice(0, 6).join(':');
  if (prefix === '0:0:0:0:0:65535' || prefix === '100:65435:0:0:0:0') {
    const [high = 0, low = 0] = all.slice(6);
    return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
  }
  return `${all
    .slice(0, 4)
    .map((group) => group.toString(16))
    .join(':')}::/64`;
}
