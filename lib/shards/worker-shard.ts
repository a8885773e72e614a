import { MessageChannel, type MessagePort } from 'node:worker_threads';
import type { Piscina } from 'piscina';
import { ShardError, deserializeError, errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ShardSink } from './backend.js';
import type { FromShard, LinkEnd, ShardConfig, ShardTaskData } from './messages.js';
import type { StoreStats } from '../store/store.js';
import { BatchChannel, acceptorEnd } from './batch-channel.js';
import { type RingBuffers, createRingBuffers } from './ring-channel.js';

// A stats request unanswered this long (a shard stuck in a long batch) counts as no answer:
// a metrics scrape must not hang on one shard.
const STATS_TIMEOUT_MS = 2_000;
// How long the port may take to close after a shard's task has rejected. The rejection
// travels apart from the port and can overtake it: a failed start's message (which says
// why, with the error's code), or the replies a dying worker posted, still come first.
export const PORT_GRACE_MS = 1_000;

interface StatsWaiter {
  settled: boolean;
  resolve(stats: StoreStats | null): void;
}

/** What one shard's worker needs from the pool that owns it. */
export interface WorkerShardContext {
  readonly pool: Piscina;
  readonly config: ShardConfig;
  readonly sink: ShardSink;
  readonly logger: Logger;
  /** Batches travel on SharedArrayBuffer rings (the port is their doorbell's fallback), not on the port. */
  readonly rings: boolean;
  /** Called once when this incarnation is lost (its worker died or could not start). */
  lost(shard: WorkerShard, error: ShardError): void;
}

/**
 * Where an incarnation stands:
 *   'waiting'   backing off before its task starts (sends queue in the port meanwhile)
 *   'starting'  its piscina task runs, the worker has not said ready yet
 *   'ready'     serving batches
 *   'lost'      its worker died or could not start; a new incarnation replaces it
 *   'closed'    ended by close()
 */
export type WorkerShardState = 'waiting' | 'starting' | 'ready' | 'lost' | 'closed';

/**
 * One incarnation of a shard on a worker thread, as piscina's WorkerInfo is one worker:
 * it owns its MessagePort, its long-lived piscina task and what is known of its fate.
 * A crash ends the incarnation; the supervisor (WorkerShards) starts a new one, so no
 * state needs resetting and a late event of a dead one is easy to ignore.
 *
 * The port is in place at once, so batches sent during a backoff wait in it. When the
 * worker dies, its port closes and its task rejects; whichever comes first reports the
 * loss, once (a failed start waits a moment for the port, which says why).
 */
export class WorkerShard {
  readonly shardId: number;
  /** How many incarnations came before this one. */
  readonly restarts: number;
  /** Crashes in a row, each soon after its start (see WorkerShards' backoff). */
  readonly quickCrashes: number;
  /** When the task starts (after any backoff). */
  readonly startsAt: number;
  /** Resolves once the worker says ready; rejects if this incarnation is lost first. */
  readonly ready: Promise<void>;
  #state: WorkerShardState = 'waiting';
  #threadId: number | null = null;
  #tid: number | null = null;
  #task: Promise<unknown> | null = null;
  readonly #port: MessagePort;
  readonly #context: WorkerShardContext;
  // Batches go on the rings when the pool uses them; else on the port.
  readonly #rings: RingBuffers | null;
  readonly #channel: BatchChannel;
  #settleReady: { resolve(): void; reject(error: ShardError): void } | null = null;
  // Set when the task rejected: the loss is reported with it once the port has closed
  // (or PORT_GRACE_MS later, should the port stay open; see #run).
  #cause: ShardError | null = null;
  // Stats requests in the order sent; the shard answers them in the same order.
  readonly #statsWaiters: StatsWaiter[] = [];

  constructor(context: WorkerShardContext, shardId: number, previous: WorkerShard | null, quickCrashes: number, delayMs: number) {
    this.#context = context;
    this.shardId = shardId;
    this.restarts = previous === null ? 0 : previous.restarts + 1;
    this.quickCrashes = quickCrashes;
    this.startsAt = Date.now() + delayMs;
    this.ready = new Promise<void>((resolve, reject) => (this.#settleReady = { resolve, reject }));
    // A failure to start is reported to whoever awaits `ready`; nobody may be.
    this.ready.catch(() => {});
    const { port1, port2 } = new MessageChannel();
    this.#port = port1;
    this.#rings = context.rings ? createRingBuffers() : null;
    // First: when the port closes, the channel takes the replies the worker left in the
    // ring before the loss is reported.
    this.#channel = acceptorEnd(port1, this.#rings, (batch) => this.#reply(batch)).start();
    port1.on('message', (message: FromShard) => this.#onMessage(message));
    port1.on('close', () => this.#lose(this.#cause ?? new ShardError('PH_ERR_SHARD_CRASHED', `shard ${shardId} worker exited`)));
    if (delayMs === 0) this.#run(port2);
    else setTimeout(() => this.#run(port2), delayMs).unref();
  }

  get state(): WorkerShardState {
    return this.#state;
  }

  /** The worker thread's id, once it has said ready. */
  get threadId(): number | null {
    return this.#threadId;
  }

  /** The operating system's id of the worker's thread (Linux), once it has said ready. */
  get tid(): number | null {
    return this.#tid;
  }

  /**
   * Gives the shard one more channel to serve, another acceptor thread's. Sent on the
   * control port, so a shard still starting (or backing off) takes it once it runs.
   */
  attach(end: LinkEnd): void {
    if (this.#state === 'lost' || this.#state === 'closed') {
      end.port.close();
      return;
    }
    this.#port.postMessage({ op: 'attach', ...end }, [end.port]);
  }

  /** The shard stops serving a link (its acceptor thread is gone). */
  detach(link: number): void {
    if (this.#state !== 'lost' && this.#state !== 'closed') this.#port.postMessage({ op: 'detach', link });
  }

  /** See ShardBackend.nudge. */
  nudge(): void {
    this.#channel.nudge();
  }

  send(batch: Buffer): void {
    this.#channel.send(batch);
  }

  /** What the shard's store holds, or null if the shard is not serving or does not answer in time. */
  stats(): Promise<StoreStats | null> {
    if (this.#state !== 'ready') return Promise.resolve(null);
    return new Promise((resolve) => {
      const waiter: StatsWaiter = { settled: false, resolve };
      const settle = (stats: StoreStats | null): void => {
        if (waiter.settled) return;
        waiter.settled = true;
        clearTimeout(timer);
        resolve(stats);
      };
      waiter.resolve = settle;
      const timer = setTimeout(() => settle(null), STATS_TIMEOUT_MS);
      timer.unref();
      this.#statsWaiters.push(waiter);
      this.#port.postMessage({ op: 'stats' });
    });
  }

  /** Ends the shard after the batches already sent have been answered. */
  async close(): Promise<void> {
    // A worker whose task has failed is not there to answer the close.
    const running = (this.#state === 'starting' || this.#state === 'ready') && this.#cause === null;
    this.#state = 'closed';
    this.#answerStats();
    this.#settleReady?.reject(new ShardError('PH_ERR_SHARD_START_FAILED', `shard ${this.shardId} was closed before it was ready`));
    if (running) {
      // The port's close event comes after every reply already posted on it, and the
      // channel then takes those the shard left in the ring.
      const closed = new Promise<void>((resolve) => this.#port.once('close', () => resolve()));
      // Batches waiting for room in the ring go before the close, which the shard obeys
      // once it has answered all it was sent. (A worker that dies meanwhile closes the
      // port, and with it the channel.)
      await this.#channel.flushed();
      this.#port.postMessage({ op: 'close' });
      await closed;
    }
    this.#channel.close();
    await this.#task?.catch(() => {});
  }

  #run(port: MessagePort): void {
    if (this.#state !== 'waiting') return; // closed during the backoff
    this.#state = 'starting';
    const { pool, config } = this.#context;
    const data: ShardTaskData = { shardId: this.shardId, port, config, rings: this.#rings };
    const task = pool.run(data, { transferList: [port] });
    this.#task = task;
    task.then(
      () => this.#lose(new ShardError('PH_ERR_SHARD_CRASHED', `shard ${this.shardId} task ended`)),
      (cause: unknown) => {
        // The rejection can overtake what the worker posted on its port before it ended:
        // replies (answers all the same: a READ over Redis has taken its message), or,
        // from a shard that could not start, why, with the error's code (a rejected task
        // carries only its message). The loss is reported when the port closes, after
        // all of that, or if the port stays open.
        const failure =
          this.#threadId !== null
            ? new ShardError('PH_ERR_SHARD_CRASHED', `shard ${this.shardId} worker died: ${errorMessage(cause)}`, { cause })
            : new ShardError('PH_ERR_SHARD_START_FAILED', `shard ${this.shardId} could not start: ${errorMessage(cause)}`, { cause });
        this.#cause = failure;
        setTimeout(() => this.#lose(failure), PORT_GRACE_MS).unref();
      },
    );
  }

  #onMessage(message: FromShard): void {
    // A dead incarnation's last words are not its replacement's replies.
    if (this.#state === 'lost') return;
    const { logger } = this.#context;
    if (message instanceof Uint8Array) {
      this.#channel.fromPort(message);
    } else if (message.op === 'log') {
      logger[message.level]({ ...message.fields, shard: this.shardId }, message.message);
    } else if (message.op === 'stats') {
      this.#statsWaiters.shift()?.resolve(message.stats);
    } else if (message.op === 'ready') {
      // Closed while starting: the worker's late 'ready' changes nothing.
      if (this.#state !== 'starting') return;
      this.#threadId = message.threadId;
      this.#tid = message.tid;
      this.#state = 'ready';
      this.#settleReady?.resolve();
    } else if (message.op === 'failed') {
      const cause = deserializeError(message.error);
      this.#lose(new ShardError('PH_ERR_SHARD_START_FAILED', `shard ${this.shardId} could not start: ${cause.message}`, { cause }));
    }
  }

  /** Stats requests still waiting get no answer: the incarnation is gone. */
  #answerStats(): void {
    for (const waiter of this.#statsWaiters.splice(0)) waiter.resolve(null);
  }

  #reply(batch: Buffer): void {
    // A dead incarnation's replies are not its replacement's.
    if (this.#state !== 'lost') this.#context.sink.onReply(this.shardId, batch);
  }

  #lose(error: ShardError): void {
    if (this.#state === 'lost' || this.#state === 'closed') return;
    // Replies the worker wrote before it died are answers all the same (a READ it
    // answered has taken its message): they go out before the rest is failed.
    this.#channel.drain();
    this.#state = 'lost';
    this.#answerStats();
    this.#channel.close();
    this.#settleReady?.reject(error);
    this.#context.lost(this, error);
  }
}
