import type { ShardError } from '../errors.js';
import type { StoreStats } from '../store/store.js';
import type { ShardConfig } from './messages.js';

/** How the router reaches its shards, whether worker threads or inline. */
export interface ShardBackend {
  readonly size: number;
  /** How many batches a shard may have unanswered before the router holds the next. */
  readonly batchesInFlight: number;
  /** Starts every shard, reporting to `sink`; resolves when all are ready to take batches. */
  start(config: ShardConfig, sink: ShardSink): Promise<void>;
  /**
   * True when send() has run each batch before it returns (a shard in this thread over a
   * synchronous store): the router then hands over its own buffer, not a copy.
   */
  readonly readsInPlace?: boolean;
  /** Hands a request batch to a shard; the buffer's memory may be transferred away. */
  send(shardId: number, batch: Buffer): void;
  /** Ends every shard, after the batches already sent have been answered. */
  close(): Promise<void>;
  describe(): ShardInfo[];
  /**
   * What each shard's store holds, asked of the shard itself between two batches (a
   * batch still on its way may or may not be counted); null for a shard that is not
   * running or does not answer in time.
   */
  stats(): Promise<(StoreStats | null)[]>;
  /**
   * Wakes a shard that has not answered for long, in case it (or this side, for its
   * reply) slept through a wake-up: harmless when it did not. Absent where nothing can be
   * missed (inline shards run on this thread: nothing to wake).
   */
  nudge?(shardId: number): void;
}

/** What hears from the shards: the router. */
export interface ShardSink {
  /** A reply batch, its records in the order of the shard's requests. */
  onReply(shardId: number, batch: Buffer): void;
  /**
   * The shard was lost; every batch sent to it that has no reply yet never will. Later
   * sends go to its replacement; with `replaced` false there is none (its first start
   * failed, and the server is closing): later sends are failed at once.
   */
  onShardDown(shardId: number, error: ShardError, replaced?: boolean): void;
}

export interface ShardInfo {
  readonly shardId: number;
  /** The worker thread's id, or null when the shard runs inline in the acceptor's thread. */
  readonly threadId: number | null;
  /** The operating system's id of that thread (Linux; null elsewhere or inline): `top -H` shows it. */
  readonly tid: number | null;
  /** How many times the shard was restarted after a crash. */
  readonly restarts: number;
  /** Serving batches; false while it starts or restarts. */
  readonly ready: boolean;
}
