import type { LogFields, LogLevel, Logger } from '../logger.js';

export const DEFAULT_LOG_INTERVAL_MS = 10_000;

/** What RateLimitedLog needs from the clock; tests pass a hand-driven one. */
export interface LogClock {
  now(): number;
  /** Calls `fn` once after `ms`; the returned function cancels it. */
  after(ms: number, fn: () => void): () => void;
}

const realClock: LogClock = {
  now: () => performance.now(),
  after: (ms, fn) => {
    // unref: a pending summary must not keep a closing process alive.
    const timer = setTimeout(fn, ms).unref();
    return () => clearTimeout(timer);
  },
};

interface Cause {
  readonly level: LogLevel;
  fields: LogFields;
  message: string;
  loggedAt: number;
  repeats: number;
  cancel: (() => void) | null;
}

// Causes remembered at most; past it, those with nothing pending are forgotten.
const MAX_CAUSES = 1_000;

/**
 * Logs each cause at most once per interval: its first occurrence at once, then its
 * repeats are counted and told in one line when the interval ends (`... (12 more times
 * in 10 s)`, field `repeats`). A full disk failing every batch, or a flood of refused
 * connections, so costs an operator a line per cause per interval, not one per event.
 *
 * A cause is a key chosen by the caller (usually the error code, maybe with the shard).
 * Nothing is scheduled unless a cause repeats within its interval.
 */
export class RateLimitedLog {
  readonly #logger: Logger;
  readonly #intervalMs: number;
  readonly #clock: LogClock;
  readonly #causes = new Map<string, Cause>();

  constructor(logger: Logger, intervalMs = DEFAULT_LOG_INTERVAL_MS, clock: LogClock = realClock) {
    this.#logger = logger;
    this.#intervalMs = intervalMs;
    this.#clock = clock;
  }

  error(cause: string, fields: LogFields, message: string): void {
    this.#report('error', cause, fields, message);
  }

  warn(cause: string, fields: LogFields, message: string): void {
    this.#report('warn', cause, fields, message);
  }

  /** Tells every pending count now (at shutdown, say) and forgets every cause. */
  flush(): void {
    for (const cause of this.#causes.values()) {
      cause.cancel?.();
      this.#summarize(cause);
    }
    this.#causes.clear();
  }

  #report(level: LogLevel, key: string, fields: LogFields, message: string): void {
    const now = this.#clock.now();
    const cause = this.#causes.get(key);
    if (cause !== undefined && now - cause.loggedAt < this.#intervalMs) {
      // The latest words stand for the repeats: they carry the freshest figures.
      cause.fields = fields;
      cause.message = message;
      cause.repeats++;
      cause.cancel ??= this.#clock.after(cause.loggedAt + this.#intervalMs - now, () => {
        cause.cancel = null;
        this.#summarize(cause);
      });
      return;
    }
    if (cause === undefined && this.#causes.size >= MAX_CAUSES) this.#forgetQuiet();
    this.#causes.set(key, { level, fields, message, loggedAt: now, repeats: 0, cancel: null });
    this.#logger[level](fields, message);
  }

  #summarize(cause: Cause): void {
    if (cause.repeats === 0) return;
    const seconds = Math.round(this.#intervalMs / 1000);
    this.#logger[cause.level]({ ...cause.fields, repeats: cause.repeats }, `${cause.message} (${cause.repeats} more time${cause.repeats === 1 ? '' : 's'} in ${seconds} s)`);
    cause.repeats = 0;
    // The interval starts again from this line, so a steady stream gives one line per interval.
    cause.loggedAt = this.#clock.now();
  }

  #forgetQuiet(): void {
    for (const [key, cause] of this.#causes) if (cause.cancel === null) this.#causes.delete(key);
  }
}
