import type { AcceptorError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { CounterTotals } from '../metrics/registry.js';
import type { SharedConnections } from '../session/shared-connections.js';
import { BatchSamples } from '../shards/counters.js';
import type { WorkerShards } from '../shards/worker-shards.js';
import type { ResolvedServerTls } from '../tls/server-tls.js';
import { AcceptorThread, type AcceptorThreadContext } from './acceptor-thread.js';
import type { AcceptorInfo } from './messages.js';
import { restartBackoff } from '../util/restart-backoff.js';
import { sumTotals } from './totals.js';

export interface AcceptorPoolOptions {
  /** Acceptor threads in all, the listening one included: the pool runs the others. */
  readonly acceptors: number;
  readonly shards: WorkerShards;
  readonly connections: SharedConnections;
  readonly logger: Logger;
  /** The TLS material in use now (null without TLS). */
  readonly tls: () => ResolvedServerTls | null;
}

/** Where each thread's connections are (host:port of the peer), for tests and diagnosis. */
export interface AcceptorRemotes {
  readonly acceptor: number;
  readonly threadId: number | null;
  readonly remotes: readonly string[];
}

/**
 * The further acceptor threads (1 to acceptors - 1) and their supervision. Each runs the
 * same session code as the listening thread, over channels of its own to every shard.
 * A thread that dies drops only its own connections: the pool logs it, takes its
 * connections out of the server-wide counts, closes its channels, and starts a new one
 * (after a backoff if it keeps dying young). The shards and the other threads carry on.
 */
export class AcceptorPool {
  /** Batch samples the threads sent in, for the metrics' histograms. */
  readonly samples = new BatchSamples();
  readonly #options: AcceptorPoolOptions;
  readonly #threads: AcceptorThread[] = [];
  // What dead incarnations had counted, as last asked, summed: the sums never go back.
  #retired: CounterTotals = sumTotals([]);
  #context: AcceptorThreadContext | null = null;
  #nextLink = 1;
  #running = false;
  #closing = false;

  constructor(options: AcceptorPoolOptions) {
    this.#options = options;
  }

  /** Starts every further thread; resolves once all listen, rejects if one cannot start. */
  async start(task: AcceptorThreadContext['task']): Promise<void> {
    const { shards, logger, tls } = this.#options;
    this.#context = {
      shards,
      logger,
      task,
      tls,
      samples: this.samples,
      nextLink: () => this.#nextLink++,
      lost: (thread, error) => this.#lost(thread, error),
    };
    for (let acceptor = 1; acceptor < this.#options.acceptors; acceptor++) this.#threads.push(new AcceptorThread(this.#context, acceptor, null, 0, 0));
    await Promise.all(this.#threads.map((thread) => thread.ready));
    this.#running = true;
  }

  describe(): AcceptorInfo[] {
    return this.#threads.map((thread) => thread.describe());
  }

  /** Every thread's counters (its last known ones when it does not answer), and the dead ones'. */
  async totals(): Promise<CounterTotals[]> {
    const live = await Promise.all(this.#threads.map(async (thread) => (await thread.totals()) ?? thread.lastTotals));
    const known = live.filter((totals): totals is CounterTotals => totals !== null);
    return [this.#retired, ...known];
  }

  async remotes(): Promise<AcceptorRemotes[]> {
    return Promise.all(this.#threads.map(async (thread) => ({ acceptor: thread.acceptor, threadId: thread.describe().threadId, remotes: (await thread.remotes()) ?? [] })));
  }

  /**
   * Hands every thread the TLS material now in use. A thread still starting may have
   * taken the old material: it gets the new once it listens. One backing off before a
   * restart takes the new material when it starts.
   */
  async reloadTls(tls: ResolvedServerTls): Promise<void> {
    await Promise.all(
      this.#threads.map(async (thread) => {
        if (thread.state === 'starting') await thread.ready.catch(() => {});
        if (thread.state === 'ready') await thread.reloadTls(tls);
      }),
    );
  }

  /** Drains every thread's connections (cut after `graceMs`) and ends the threads. */
  async close(graceMs: number): Promise<void> {
    this.#closing = true;
    await Promise.all(this.#threads.map((thread) => thread.close(graceMs)));
  }

  /** Ends acceptor `acceptor`'s thread as a crash would. For tests of supervision. */
  async terminate(acceptor: number): Promise<void> {
    const thread = this.#threads[acceptor - 1];
    if (thread === undefined) throw new Error(`no acceptor thread ${acceptor}`);
    await thread.terminate();
  }

  #lost(thread: AcceptorThread, error: AcceptorError): void {
    const { acceptor } = thread;
    if (this.#closing || this.#threads[acceptor - 1] !== thread) return;
    // Its thread has exited: every connection it held is closed.
    this.#options.connections.releaseAcceptor(acceptor);
    if (thread.lastTotals !== null) {
      const dead = { ...thread.lastTotals, openConnections: 0 };
      this.#retired = sumTotals([this.#retired, dead]);
    }
    // A thread that never listened during start() is start()'s rejection, for the caller
    // to report; one that was serving and then died is restarted like any other.
    if (!this.#running && thread.restarts === 0) return;
    const { logger } = this.#options;
    logger.error({ code: error.code, acceptor }, `${error.message}; its connections were dropped; restarting it`);
    const { quickCrashes, delay } = restartBackoff(thread);
    const replacement = new AcceptorThread(this.#context as AcceptorThreadContext, acceptor, thread, quickCrashes, delay);
    this.#threads[acceptor - 1] = replacement;
    replacement.ready.then(
      () => logger.warn({ acceptor, restarts: replacement.restarts }, `acceptor ${acceptor} is back (restart #${replacement.restarts})`),
      () => {}, // a failed restart reports itself through #lost
    );
  }
}

