import type { Logger } from '../../logger.js';

// At most one line per this long, so an outage of a busy node makes a line every few
// seconds rather than one per command.
const REPORT_EVERY_MS = 10_000;

/**
 * Counts the commands Redis failed, by error code, and reports them now and then with
 * the last reason seen (`CLUSTERDOWN The cluster is down`, `Socket closed unexpectedly`):
 * what the operator needs to tell an outage from a misconfiguration.
 */
export class FailureReport {
  readonly #logger: Logger;
  readonly #counts = new Map<string, number>();
  #lastReason = '';
  #reportedAt = -Infinity;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  add(code: string, reason: string): void {
    this.#counts.set(code, (this.#counts.get(code) ?? 0) + 1);
    this.#lastReason = reason;
    const now = performance.now();
    if (now - this.#reportedAt < REPORT_EVERY_MS) return;
    this.#reportedAt = now;
    const counts = Object.fromEntries(this.#counts);
    const total = [...this.#counts.values()].reduce((sum, n) => sum + n, 0);
    this.#counts.clear();
    this.#logger.error(
      { code, ...counts },
      `${total} Redis command(s) failed since the last report: COMPOSEs Redis did not take were answered MESSAGE FAILED, the others dropped their connection (last: ${this.#lastReason})`,
    );
  }
}
