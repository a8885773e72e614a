import { isIP } from 'node:net';
import { UsageError, integerFlag } from './flags.js';

/** `HOST:PORT` (`[::1]:9100` for IPv6) from a flag's value. */
export function hostPortFlag(flag: string, value: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(value);
  if (match === null) throw new UsageError(`--${flag} must be HOST:PORT (e.g. 127.0.0.1:9100, [::1]:9100), got '${value}'`);
  const host = (match[1] ?? match[2]) as string;
  const port = integerFlag(flag, match[3], 0, 65_535) as number;
  return { host, port };
}

/** Whether an address the server bound to is reachable only from this machine. */
export function isLoopback(address: string): boolean {
  const v4 = address.startsWith('::ffff:') ? address.slice('::ffff:'.length) : address;
  if (isIP(v4) === 4) return v4.startsWith('127.');
  return address === '::1';
}
