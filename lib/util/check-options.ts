import { InvalidOptionError } from '../errors.js';

/**
 * The checks every options object passes at the door (createServer(), listen(), connect()), as
 * undici's constructors do: unknown names are refused with the closest known name as a
 * hint, and numbers must be integers in range. `what` names the call in messages.
 */
export function checkOptionNames(options: unknown, known: readonly string[], what: string): void {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError(`${what} options must be an object`);
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue;
    const hint = known.find((name) => name.toLowerCase().startsWith(key.toLowerCase().slice(0, 4)));
    throw new InvalidOptionError(`unknown ${what} option '${key}'${hint ? `, did you mean '${hint}'?` : ''}`, 'PH_ERR_OPTION_UNKNOWN');
  }
}

/** `value` if it is an integer in [min, max]; `fallback` if it is undefined. */
export function integerOption(name: string, value: unknown, min: number, max: number, fallback?: number): number {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(`invalid ${name}: expected an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

/** A host to listen on or connect to: a non-empty name or address. */
export function checkHost(host: unknown): asserts host is string {
  if (typeof host !== 'string' || host.length === 0) throw new InvalidOptionError('invalid host: expected a host name or address');
}
