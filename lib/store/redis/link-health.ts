import type { Logger } from '../../logger.js';

// A node that stays unreachable is reported again at most this often, so a long outage
// makes a line every few seconds, not one per reconnection attempt.
const REPORT_EVERY_MS = 10_000;

interface Outage {
  readonly since: number;
  failures: number;
  reportedAt: number;
}

/**
 * What the operator hears of the connections to Redis: one line when a node's connection
 * is lost, a reminder now and then while it stays lost, and one line when it is back.
 * Keyed by node address, so in a cluster each node's outage is told on its own.
 */
export class LinkHealth {
  readonly #logger: Logger;
  readonly #outages = new Map<string, Outage>();

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  failed(address: string, err: Error): void {
    const now = performance.now();
    const outage = this.#outages.get(address);
    if (outage === undefined) {
      this.#outages.set(address, { since: now, failures: 1, reportedAt: now });
      this.#logger.error({ code: 'PH_ERR_STORE_UNAVAILABLE', redis: address }, `lost the connection to Redis at ${address} (${err.message}); reconnecting, and until then COMPOSEs to its mailboxes fail`);
      return;
    }
    outage.failures++;
    if (now - outage.reportedAt < REPORT_EVERY_MS) return;
    outage.reportedAt = now;
    const seconds = Math.round((now - outage.since) / 1000);
    this.#logger.error({ code: 'PH_ERR_STORE_UNAVAILABLE', redis: address, failures: outage.failures }, `Redis at ${address} still unreachable after ${seconds} s (${err.message})`);
  }

  ready(address: string): void {
    const outage = this.#outages.get(address);
    if (outage === undefined) return;
    this.#outages.delete(address);
    const seconds = ((performance.now() - outage.since) / 1000).toFixed(1);
    this.#logger.warn({ redis: address }, `the connection to Redis at ${address} is back after ${seconds} s`);
  }
}
