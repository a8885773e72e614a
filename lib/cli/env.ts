import { UsageError } from './flags.js';

/** The flags of a command as parseArgs takes them. */
export type FlagSpec = Readonly<Record<string, { readonly type: 'string' | 'boolean'; readonly short?: string }>>;

export const ENV_PREFIX = 'PIGEONHOLE_';

/** `--data-dir` is PIGEONHOLE_DATA_DIR. */
export function envName(flag: string): string {
  return `${ENV_PREFIX}${flag.toUpperCase().replaceAll('-', '_')}`;
}

const TRUE = new Set(['1', 'true', 'yes', 'on']);
const FALSE = new Set(['0', 'false', 'no', 'off', '']);

export interface WithEnvironment<V> {
  readonly values: V;
  /** Flags whose value came from the environment. */
  readonly fromEnv: readonly string[];
  /** PIGEONHOLE_* variables that name no flag (a typo, most likely). */
  readonly unknown: readonly string[];
  /** PIGEONHOLE_* variables not taken because the command line chose another way (see Alternatives). */
  readonly setAside: readonly string[];
}

/**
 * Several ways to do something (where mailboxes are kept): each way has the flags that
 * choose it and the flags that belong to it. A way chosen on the command line (one of
 * its choosing flags given there) wins over the environment the way a single flag does:
 * the environment's flags that belong only to other ways are set aside.
 */
export type Alternatives = readonly { readonly chosenBy: readonly string[]; readonly flags: readonly string[] }[];

/**
 * Fills in every flag not given on the command line from its PIGEONHOLE_<FLAG> variable:
 * a flag given wins, and so does a way chosen among `alternatives`. A switch's variable
 * takes 1/true/yes/on or 0/false/no/off. `--help` never comes from the environment.
 */
export function withEnvironment<V extends Record<string, string | boolean | undefined>>(values: V, spec: FlagSpec, env: NodeJS.ProcessEnv, alternatives: Alternatives = []): WithEnvironment<V> {
  const filled: Record<string, string | boolean | undefined> = { ...values };
  const fromEnv: string[] = [];
  const setAside: string[] = [];
  const known = new Set<string>();
  const chosen = alternatives.filter((way) => way.chosenBy.some((flag) => values[flag] !== undefined));
  const others = new Set(chosen.length === 0 ? [] : alternatives.filter((way) => !chosen.includes(way)).flatMap((way) => [...way.chosenBy, ...way.flags]));
  for (const way of chosen) for (const flag of [...way.chosenBy, ...way.flags]) others.delete(flag);
  for (const [flag, { type }] of Object.entries(spec)) {
    if (flag === 'help') continue;
    const name = envName(flag);
    known.add(name);
    const raw = env[name];
    if (raw === undefined || filled[flag] !== undefined) continue;
    if (others.has(flag)) {
      setAside.push(name);
      continue;
    }
    if (type === 'string') {
      filled[flag] = raw;
    } else {
      const word = raw.trim().toLowerCase();
      if (!TRUE.has(word) && !FALSE.has(word)) throw new UsageError(`${name} must be 1, true, yes or on, or 0, false, no or off; got '${raw}'`);
      // A switch turned off in the environment is simply not given.
      if (TRUE.has(word)) filled[flag] = true;
    }
    fromEnv.push(flag);
  }
  const unknown = Object.keys(env).filter((name) => name.startsWith(ENV_PREFIX) && !known.has(name) && name !== envName('help'));
  return { values: filled as V, fromEnv, unknown, setAside };
}

/**
 * A usage error about a flag whose value came from the environment says so, since
 * `--port must be ...` would send a user looking at a command line that has no --port.
 */
export function blameEnvironment(err: unknown, fromEnv: readonly string[]): unknown {
  if (!(err instanceof UsageError)) return err;
  const names = fromEnv.filter((name) => new RegExp(`--${name}(?![\\w-])`).test(err.message)).map(envName);
  return names.length === 0 ? err : new UsageError(`${err.message} (from ${names.join(' and ')} in the environment)`);
}
