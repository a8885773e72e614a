// A thread that dies again within this long of starting is crash-looping: it waits
// before the next start, doubling up to the cap, so a broken thread cannot spin a core.
const QUICK_CRASH_MS = 1_000;
const FIRST_BACKOFF_MS = 50;
const MAX_BACKOFF_MS = 5_000;

/** What a supervised thread that died knows of itself. */
export interface Incarnation {
  /** When it started (or was due to start, after its own wait). */
  readonly startsAt: number;
  /** How many times in a row its predecessors died soon after starting. */
  readonly quickCrashes: number;
}

/** The replacement's count of quick crashes in a row, and how long it waits before starting. */
export function restartBackoff(dead: Incarnation): { quickCrashes: number; delay: number } {
  const quickCrashes = Date.now() - dead.startsAt < QUICK_CRASH_MS ? dead.quickCrashes + 1 : 0;
  const delay = quickCrashes === 0 ? 0 : Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (quickCrashes - 1));
  return { quickCrashes, delay };
}
