import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { ShardError } from './errors.js';
import type { Logger } from './logger.js';
import type { ShardBackend, ShardEvents, ShardInfo } from './shard-backend.js';
import type { FromShard, ShardConfig, ShardTaskData } from './shard-messages.js';

// Under tsx (development, tests) this file is .ts and so is the worker; compiled, both are .js.
const WORKER_FILE = new URL(`../workers/shard${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url).href;

// A shard that dies again within this long of starting is crash-looping: wait before
// the next start, doubling up to the cap, so a broken shard cannot spin a core.
const QUICK_CRASH_MS = 1_000;
const FIRST_BACKOFF_MS = 50;
const MAX_BACKOFF_MS = 5_000;

interface ShardState {
  generation: number;
  port: MessagePort;
  threadId: number | null;
  restarts: number;
  startedAt: number;
  quickCrashes: number;
  /** Whether its piscina task was started (not still waiting out a backoff). */
  started: boolean;
  portClosed: boolean;
}

/**
 * Mailbox shards as worker threads, started through piscina and supervised.
 *
 * Each shard is one long-lived piscina task holding the MessagePort it was handed, so
 * `minThreads = maxThreads = size`. The task resolves only at shutdown: piscina parks a
 * worker with no task in Atomics.wait, which would stall the port (atomics are off too).
 *
 * When a worker dies, its port closes and its task rejects; whichever comes first
 * reports the shard down once (the generation counter makes the other a no-op), then a
 * new task starts on a fresh port, which queues sends until the new worker listens.
 */
export class WorkerShards implements ShardBackend {
  readonly size: number;
  #config: ShardConfig | null = null;
  readonly #logger: Logger;
  #pool: Piscina | null = null;
  readonly #shards: ShardState[] = [];
  readonly #tasks = new Set<Promise<unknown>>();
  #events: ShardEvents | null = null;
  #closing = false;
  #running = false;

  constructor(size: number, logger: Logger) {
    this.size = size;
    this.#logger = logger;
  }

  start(config: ShardConfig, events: ShardEvents): Promise<void> {
    this.#config = config;
    this.#events = events;
    // Threads start here, not in the constructor: a server that never listens holds none.
    this.#pool = new Piscina({
      filename: WORKER_FILE,
      minThreads: this.size,
      maxThreads: this.size,
      concurrentTasksPerWorker: 1,
      atomics: 'disabled',
      // Never retire an idle thread: each holds a shard. (piscina treats Infinity as never.)
      idleTimeout: Infinity,
    });
    const ready: Promise<void>[] = [];
    for (let shardId = 0; shardId < this.size; shardId++) ready.push(this.#launch(shardId));
    return Promise.all(ready).then(() => {
      this.#running = true;
    });
  }

  send(shardId: number, batch: Buffer): void {
    (this.#shards[shardId] as ShardState).port.postMessage(batch, [batch.buffer as ArrayBuffer]);
  }

  async close(): Promise<void> {
    this.#closing = true;
    const closed = this.#shards.map((shard) => {
      if (!shard.started || shard.portClosed) {
        shard.port.close();
        return Promise.resolve();
      }
      // The close event comes after every reply already posted on the port.
      return new Promise<void>((resolve) => {
        shard.port.once('close', () => resolve());
        shard.port.postMessage({ op: 'close' });
      });
    });
    await Promise.all([...closed, ...this.#tasks]);
    await this.#pool?.destroy();
  }

  describe(): ShardInfo[] {
    return this.#shards.map((shard, shardId) => ({ shardId, threadId: shard.threadId, restarts: shard.restarts }));
  }

  /** Ends a shard's worker as a crash would. For tests of supervision. */
  async terminate(shardId: number): Promise<void> {
    const threadId = this.#shards[shardId]?.threadId;
    const worker = this.#pool?.threads.find((thread) => thread.threadId === threadId);
    if (worker === undefined) throw new Error(`no worker thread for shard ${shardId}`);
    await worker.terminate();
  }

  /**
   * Starts (or restarts) one shard; resolves once it says ready, rejects if it cannot
   * start. The port is in place at once, so sends made during a backoff delay wait in it.
   */
  #launch(shardId: number, delayMs = 0): Promise<void> {
    const previous = this.#shards[shardId];
    const { port1, port2 } = new MessageChannel();
    const shard: ShardState = {
      generation: (previous?.generation ?? 0) + 1,
      port: port1,
      threadId: null,
      restarts: previous === undefined ? 0 : previous.restarts + 1,
      startedAt: Date.now() + delayMs,
      quickCrashes: previous?.quickCrashes ?? 0,
      started: false,
      portClosed: false,
    };
    this.#shards[shardId] = shard;
    const { generation } = shard;

    return new Promise<void>((resolve, reject) => {
      port1.on('message', (message: FromShard) => {
        if (message instanceof Uint8Array) {
          this.#events?.reply(shardId, Buffer.from(message.buffer, message.byteOffset, message.byteLength));
        } else if (message.op === 'log') {
          this.#logger[message.level](`shard ${shardId}: ${message.message}`);
        } else if (message.op === 'ready') {
          shard.threadId = message.threadId;
          resolve();
        } else if (message.op === 'failed') {
          const error = new ShardError('PH_ERR_SHARD_START_FAILED', `shard ${shardId} could not start: ${message.error.message}`);
          reject(error);
          this.#lost(shardId, generation, error);
        }
      });
      port1.on('close', () => {
        shard.portClosed = true;
        reject(new ShardError('PH_ERR_SHARD_CRASHED', `shard ${shardId} worker exited`));
        this.#lost(shardId, generation, new ShardError('PH_ERR_SHARD_CRASHED', `shard ${shardId} worker exited`));
      });

      const run = (): void => {
        if (this.#closing) return;
        shard.started = true;
        const data: ShardTaskData = { shardId, port: port2, config: this.#config as ShardConfig };
        const task = (this.#pool as Piscina).run(data, { transferList: [port2] });
        this.#tasks.add(task);
        task.then(
          () => {
            this.#tasks.delete(task);
            this.#lost(shardId, generation, new ShardError('PH_ERR_SHARD_CRASHED', `shard ${shardId} task ended`));
          },
          (cause: unknown) => {
            this.#tasks.delete(task);
            const error =
              shard.threadId === null
                ? new ShardError('PH_ERR_SHARD_START_FAILED', `shard ${shardId} could not start: ${describe(cause)}`, { cause })
                : new ShardError('PH_ERR_SHARD_CRASHED', `shard ${shardId} worker died: ${describe(cause)}`, { cause });
            reject(error);
            this.#lost(shardId, generation, error);
          },
        );
      };
      if (delayMs === 0) run();
      else setTimeout(run, delayMs).unref();
    });
  }

  #lost(shardId: number, generation: number, error: ShardError): void {
    const shard = this.#shards[shardId] as ShardState;
    if (this.#closing || shard.generation !== generation) return;
    // A shard that never became ready during start() is start()'s rejection, for the
    // caller to report; one that was ready and then died is restarted like any other.
    if (!this.#running && shard.restarts === 0 && shard.threadId === null) return;
    // The replacement takes a new generation at once, so the port close and the task
    // rejection that follow one death report it once.
    shard.port.close();
    this.#logger.error(`${error.message}; restarting it`);

    const quick = Date.now() - shard.startedAt < QUICK_CRASH_MS;
    const quickCrashes = quick ? shard.quickCrashes + 1 : 0;
    shard.quickCrashes = quickCrashes;
    const delay = quickCrashes === 0 ? 0 : Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (quickCrashes - 1));
    const restarted = this.#launch(shardId, delay);
    this.#events?.down(shardId, error);
    restarted.then(
      () => this.#logger.warn(`shard ${shardId} is back (restart #${(this.#shards[shardId] as ShardState).restarts})`),
      () => {}, // a failed restart reports itself through #lost
    );
  }
}

function describe(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}
