import { usernameProblem } from '../protocol/username.js';

/** A mistake on the command line: the CLI prints the message and exits 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Parses a flag's value as an integer within [min, max], or explains why not. */
export function integerFlag(flag: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`--${flag} must be a whole number, got '${value}'`);
  const n = Number(value);
  if (n < min || n > max) throw new UsageError(`--${flag} must be from ${min} to ${max}, got ${value}`);
  return n;
}

/** A flag in whole seconds for a value in milliseconds within [minMs, maxMs]; gives the milliseconds. */
export function secondsFlag(flag: string, value: string | undefined, minMs: number, maxMs: number): number | undefined {
  const seconds = integerFlag(flag, value, Math.ceil(minMs / 1000), Math.floor(maxMs / 1000));
  return seconds === undefined ? undefined : seconds * 1000;
}

const BYTE_UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 };

/** A size in bytes: a whole number, optionally followed by K, M or G (1024-based). */
export function bytesFlag(flag: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const match = /^(\d+)([KMG]?)$/i.exec(value);
  if (match === null) throw new UsageError(`--${flag} must be a size in bytes (a whole number, or one ending in K, M or G), got '${value}'`);
  const n = Number(match[1]) * (BYTE_UNITS[(match[2] as string).toUpperCase()] as number);
  if (n < min || n > max) throw new UsageError(`--${flag} must be from ${min} to ${max} bytes, got ${value}`);
  return n;
}

/** A required username flag (`--user`, `--from`, ...), checked as the protocol wants it. */
export function userFlag(flag: string, value: string | undefined): string {
  if (value === undefined) throw new UsageError(`--${flag} is required`);
  const problem = usernameProblem(value);
  if (problem !== null) throw new UsageError(`bad --${flag}: ${problem}`);
  return value;
}
