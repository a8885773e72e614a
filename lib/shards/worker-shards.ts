import { MessageChannel } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { ShardError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ShardBackend, ShardInfo, ShardSink } from './backend.js';
import type { LinkEnd, ShardConfig } from './messages.js';
import { createRingBuffers } from './ring-channel.js';
import type { StoreStats } from '../store/store.js';
import { WorkerShard, type WorkerShardContext } from './worker-shard.js';
import { restartBackoff } from '../util/restart-backoff.js';

/** An acceptor thread's end of its channel to one shard: the port and the rings (null on the port transport). */
export type AcceptorLinkEnd = Omit<LinkEnd, 'link'>;

/** Hears, for one link, that a shard was replaced: the link's new channel to it, and why. */
export type LinkReplaced = (shardId: number, end: AcceptorLinkEnd, error: ShardError) => void;

// Under tsx (development, tests) this file is .ts and so is the worker; compiled, both are
// .js. Shards over Redis have an entry of their own, so the others never load its client.
const workerFile = (config: ShardConfig): string =>
  new URL(`../../workers/${config.store.kind === 'redis' ? 'redis-shard' : 'shard'}${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url).href;

/** How batches reach a worker shard: SharedArrayBuffer rings, or the MessagePort. */
export type ShardTransport = 'ring' | 'port';

// Batches a shard may have unanswered on the ring. Two let the next batch wait in the ring
// while the shard works on one, so a busy shard goes on without a wake-up; more only
// split the same commands into more, smaller batches.
const RING_BATCHES_IN_FLIGHT = 2;

/**
 * Mailbox shards as worker threads, started through piscina and supervised.
 *
 * Each shard is one long-lived piscina task holding the MessagePort it was handed, so
 * `minThreads = maxThreads = size`. The task resolves only at shutdown: piscina parks a
 * worker with no task in Atomics.wait, which would stall the port (atomics are off too).
 *
 * A shard's worker that dies is replaced by a new incarnation (a WorkerShard) at once,
 * or after a backoff if it keeps dying young; the router hears of the loss and decides
 * what becomes of the batches the dead one had not answered.
 */
export class WorkerShards implements ShardBackend {
  readonly size: number;
  readonly #logger: Logger;
  #pool: Piscina | null = null;
  readonly #shards: WorkerShard[] = [];
  #context: WorkerShardContext | null = null;
  #closing = false;
  #running = false;
  // The links of further acceptor threads, each told when a shard is replaced.
  readonly #links = new Map<number, LinkReplaced>();

  readonly #transport: ShardTransport;
  /**
   * On the ring a busy shard in memory takes the next batch without being woken, so two
   * may be on their way. Otherwise one: on the port every batch wakes the shard; a
   * durable shard commits one batch per transaction, and a shard over Redis sends one
   * pipeline per batch, so their batches grow instead while one is out (group commit).
   * Set by start(), which knows the store.
   */
  batchesInFlight = 1;

  constructor(size: number, logger: Logger, transport: ShardTransport = 'ring') {
    this.size = size;
    this.#logger = logger;
    this.#transport = transport;
  }

  async start(config: ShardConfig, sink: ShardSink): Promise<void> {
    // Threads start here, not in the constructor: a server that never listens holds none.
    const pool = new Piscina({
      filename: workerFile(config),
      minThreads: this.size,
      maxThreads: this.size,
      concurrentTasksPerWorker: 1,
      atomics: 'disabled',
      // Never retire an idle thread: each holds a shard. (piscina treats Infinity as never.)
      idleTimeout: Infinity,
    });
    this.#pool = pool;
    this.batchesInFlight = this.#transport === 'ring' && config.store.kind === 'memory' ? RING_BATCHES_IN_FLIGHT : 1;
    this.#context = { pool, config, sink, logger: this.#logger, rings: this.#transport === 'ring', lost: (shard, error) => this.#lost(shard, error) };
    for (let shardId = 0; shardId < this.size; shardId++) this.#shards.push(new WorkerShard(this.#context, shardId, null, 0, 0));
    await Promise.all(this.#shards.map((shard) => shard.ready));
    this.#running = true;
  }

  nudge(shardId: number): void {
    this.#shards[shardId]?.nudge();
  }

  send(shardId: number, batch: Buffer): void {
    (this.#shards[shardId] as WorkerShard).send(batch);
  }

  async close(): Promise<void> {
    this.#closing = true;
    await Promise.all(this.#shards.map((shard) => shard.close()));
    await this.#pool?.destroy();
  }

  describe(): ShardInfo[] {
    return this.#shards.map((shard) => ({ shardId: shard.shardId, threadId: shard.threadId, tid: shard.tid, restarts: shard.restarts, ready: shard.state === 'ready' }));
  }

  /**
   * Opens a channel from every shard to another acceptor thread, whose batches the shards
   * journal under `link`; returns that thread's ends, by shard. When a shard is replaced
   * after a crash, `replaced` gets the link's channel to the replacement.
   */
  openLink(link: number, replaced: LinkReplaced): AcceptorLinkEnd[] {
    this.#links.set(link, replaced);
    return this.#shards.map((shard) => this.#connect(shard, link));
  }

  /** The shards stop serving a link: its acceptor thread is gone. */
  closeLink(link: number): void {
    if (!this.#links.delete(link)) return;
    for (const shard of this.#shards) shard.detach(link);
  }

  #connect(shard: WorkerShard, link: number): AcceptorLinkEnd {
    const { port1, port2 } = new MessageChannel();
    const rings = this.#transport === 'ring' ? createRingBuffers() : null;
    shard.attach({ link, port: port2, rings });
    return { port: port1, rings };
  }

  stats(): Promise<(StoreStats | null)[]> {
    return Promise.all(this.#shards.map((shard) => shard.stats()));
  }

  /** Ends a shard's worker as a crash would. For tests of supervision. */
  async terminate(shardId: number): Promise<void> {
    const threadId = this.#shards[shardId]?.threadId;
    const worker = this.#pool?.threads.find((thread) => thread.threadId === threadId);
    if (worker === undefined) throw new Error(`no worker thread for shard ${shardId}`);
    await worker.terminate();
  }

  #lost(shard: WorkerShard, error: ShardError): void {
    const { shardId } = shard;
    if (this.#closing || this.#shards[shardId] !== shard) return;
    // A shard that never became ready during start() is start()'s rejection, for the
    // caller to report; one that was ready and then died is restarted like any other.
    // Commands may already wait on it (a host's socket, handed over while the shards
    // started): with no replacement to answer them, they are failed.
    if (!this.#running && shard.restarts === 0 && shard.threadId === null) {
      this.#context?.sink.onShardDown(shardId, error, false);
      return;
    }
    this.#logger.error({ code: error.code, shard: shardId }, `${error.message}; restarting it`);

    const { quickCrashes, delay } = restartBackoff(shard);
    const replacement = new WorkerShard(this.#context as WorkerShardContext, shardId, shard, quickCrashes, delay);
    this.#shards[shardId] = replacement;
    this.#context?.sink.onShardDown(shardId, error);
    for (const [link, replaced] of this.#links) replaced(shardId, this.#connect(replacement, link), error);
    replacement.ready.then(
      () => this.#logger.warn({ shard: shardId, restarts: replacement.restarts }, `shard ${shardId} is back (restart #${replacement.restarts})`),
      () => {}, // a failed restart reports itself through #lost
    );
  }
}
