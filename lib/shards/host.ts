import { type MessagePort, threadId } from 'node:worker_threads';
import { serializeError } from '../errors.js';
import type { Logger } from '../logger.js';
import { mailboxesForHeap } from '../util/heap-budget.js';
import { MemoryStore } from '../store/memory.js';
import type { RedisStoreOptions } from '../store/redis/redis-store.js';
import { SqliteStore } from '../store/sqlite.js';
import type { AsyncMailboxStore, MailboxStore } from '../store/store.js';
import { AsyncShardCore } from './async-core.js';
import { ShardCore } from './core.js';
import { osThreadId } from '../util/os-thread-id.js';
import { type FromShard, MAIN_LINK, type ShardConfig, type ToShard } from './messages.js';
import { type BatchTaker, shardEnd } from './batch-channel.js';
import type { RingBuffers } from './ring-channel.js';
import { ShardLinks } from './shard-links.js';

// Under tsx (development, tests) this file is .ts and so is the Redis store; compiled,
// both are .js.
const REDIS_STORE_MODULE = new URL(`../store/redis/redis-store${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url).href;

/** Opens a Redis store: RedisStore.open, handed in by a worker entry that imports it. */
export type RedisStoreOpener = (options: RedisStoreOptions) => Promise<AsyncMailboxStore>;

function createStore(config: ShardConfig, shardId: number): MailboxStore {
  const { store, maxMessagesPerUser } = config;
  // Per thread: a shard's mailboxes live on its own V8 heap.
  const maxMailboxes = mailboxesForHeap();
  if (store.kind === 'memory') return new MemoryStore({ maxMessagesPerUser, maxMailboxes, maxBytes: store.maxBytes });
  if (store.kind === 'redis') throw new Error('a Redis store is asynchronous: open it with openShardCore()');
  const file = store.files[shardId];
  if (file === undefined) throw new Error(`no store file for shard ${shardId}`);
  const { fsync, epoch, maxBytes, dataDir, disk } = store;
  // The data directory's layout made the file; one that vanished since is not recreated.
  return new SqliteStore({ file, maxMessagesPerUser, maxMailboxes, fsync, epoch, maxBytes, dataDir, disk, create: false, verify: true });
}

function createShardCore(config: ShardConfig, shardId: number, logger: Logger): ShardCore {
  return new ShardCore(createStore(config, shardId), logger);
}

/** A shard's logic over a synchronous store (memory, SQLite) or an asynchronous one (Redis). */
export type AnyShardCore = ShardCore | AsyncShardCore;

/** Opens the shard's store (connecting, for Redis) and the core that applies batches to it. */
export async function openShardCore(config: ShardConfig, shardId: number, logger: Logger, openRedis?: RedisStoreOpener): Promise<AnyShardCore> {
  const { store, maxMessagesPerUser } = config;
  if (store.kind !== 'redis') return createShardCore(config, shardId, logger);
  const { target, waitReplicas, waitTimeoutMs, keyPrefix } = store;
  // Loaded only here: a shard over memory or SQLite never pays for the Redis client. (A
  // worker thread under tsx cannot import TypeScript by a computed name: its entry,
  // workers/redis-shard.ts, imports the store and hands in its opener.)
  const open = openRedis ?? ((await import(REDIS_STORE_MODULE)) as typeof import('../store/redis/redis-store.js')).RedisStore.open;
  return new AsyncShardCore(await open({ target, maxMessagesPerUser, waitReplicas, waitTimeoutMs, keyPrefix, logger }));
}

/**
 * Runs batches through a core one after another and hands each reply to the `deliver`
 * it came with, in the order the batches came, whichever channel (link) they came on. A
 * synchronous core answers at once, within the call; an asynchronous one when its store
 * has answered.
 */
export class BatchRunner implements BatchTaker {
  readonly #core: AnyShardCore;
  /** Answers within run(): a batch read in place need not outlive the call. */
  readonly synchronous: boolean;
  // The last asynchronous batch's end: the next one starts after it.
  #idle: Promise<void> = Promise.resolve();

  constructor(core: AnyShardCore) {
    this.#core = core;
    this.synchronous = core instanceof ShardCore;
  }

  /** Applies a batch of link `link` (its journal key beside the seq); its reply goes to `deliver`. */
  run(batch: Uint8Array, link: number, deliver: (reply: Buffer) => void): void {
    const core = this.#core;
    if (core instanceof ShardCore) {
      deliver(core.handle(batch, link));
      return;
    }
    // A rejection is a bug (store failures are answers): left unhandled, it ends the
    // worker, which is restarted like any crashed shard (inline, the process).
    this.#idle = this.#idle.then(async () => deliver(await core.handle(batch)));
  }

  /** A link's acceptor thread is gone: its journal goes. */
  forget(link: number): void {
    const core = this.#core;
    if (core instanceof ShardCore) core.forgetLink(link);
  }

  /** What the store holds, if it can tell. */
  stats(): ReturnType<ShardCore['stats']> {
    return this.#core instanceof ShardCore ? this.#core.stats() : null;
  }

  /** Closes the core once every batch given to run() has been answered. */
  async close(): Promise<void> {
    await this.#idle;
    await this.#core.close();
  }
}

/**
 * Serves one shard until the acceptor says close; resolves then. Batches come and go on
 * the shard's rings when it has them, else on `port` (see BatchChannel), each request
 * batch answered by one reply batch. The port always carries the control messages and
 * the logs. Further acceptor threads get
 * channels of their own ('attach'), served by the same runner (ShardLinks).
 */
export function serveShard(port: MessagePort, shardId: number, config: ShardConfig, rings: RingBuffers | null = null, openRedis?: RedisStoreOpener): Promise<void> {
  const post = (message: FromShard, transfer?: ArrayBuffer[]): void => port.postMessage(message, transfer);
  // The host's logger is a function and cannot cross threads: reports travel on the port.
  const logger: Logger = {
    info: (fields, message) => post({ op: 'log', level: 'info', fields, message }),
    warn: (fields, message) => post({ op: 'log', level: 'warn', fields, message }),
    error: (fields, message) => post({ op: 'log', level: 'error', fields, message }),
  };
  const opened = openShardCore(config, shardId, logger, openRedis).catch((err: unknown) => {
    // Sent as {code, message}: the acceptor rebuilds the typed error as the cause.
    post({ op: 'failed', error: serializeError(err) });
    port.close();
    throw err;
  });
  return opened.then(
    (core) =>
      new Promise((resolve) => {
        const runner = new BatchRunner(core);
        const channel = shardEnd(port, rings, runner, MAIN_LINK).start();
        const links = new ShardLinks(runner);
        port.on('message', (message: ToShard) => {
          if (message instanceof Uint8Array) {
            channel.fromPort(message);
            return;
          }
          if (message.op === 'stats') {
            post({ op: 'stats', stats: runner.stats() });
            return;
          }
          if (message.op === 'attach') {
            links.attach(message);
            return;
          }
          if (message.op === 'detach') {
            links.detach(message.link);
            return;
          }
          if (message.op === 'close') {
            // Whatever the rings still hold was sent before the close: answer it first,
            // and end once every reply is on its way.
            channel.drain();
            links.drain();
            void runner
              .close()
              .then(() => Promise.all([channel.flushed(), links.flushed()]))
              .then(() => {
                links.close();
                channel.close();
                resolve();
              });
          }
        });
        post({ op: 'ready', threadId, tid: osThreadId() });
      }),
  );
}
