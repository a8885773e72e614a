import type { ShardError } from '../errors.js';
import type { StoreStats } from '../store/store.js';
import type { ShardBackend, ShardInfo, ShardSink } from './backend.js';
import type { ShardConfig } from './messages.js';
import { type BatchChannel, acceptorEnd } from './batch-channel.js';
import type { AcceptorLinkEnd } from './worker-shards.js';

/**
 * The shards as a further acceptor thread sees them: they run on worker threads the
 * server started and supervises on the thread that called listen(); this thread was
 * handed a channel to each (its link: its own pair of rings and port per shard), and is
 * handed the new one whenever a shard was replaced after a crash, which the router then
 * treats as it does on the listening thread (batches sent again, or failed).
 */
export class LinkedShards implements ShardBackend {
  readonly size: number;
  readonly batchesInFlight: number;
  readonly #ends: readonly AcceptorLinkEnd[];
  readonly #channels: BatchChannel[] = [];
  #sink: ShardSink | null = null;

  constructor(ends: readonly AcceptorLinkEnd[], batchesInFlight: number) {
    this.size = ends.length;
    this.batchesInFlight = batchesInFlight;
    this.#ends = ends;
  }

  /** The shards are already running: this only opens the channels, reporting to `sink`. */
  async start(_config: ShardConfig, sink: ShardSink): Promise<void> {
    this.#sink = sink;
    this.#ends.forEach((end, shardId) => this.#channels.push(this.#open(shardId, end)));
  }

  send(shardId: number, batch: Buffer): void {
    (this.#channels[shardId] as BatchChannel).send(batch);
  }

  /**
   * Shard `shardId` was lost and replaced; `end` is the channel to the replacement.
   * Replies the lost shard wrote before it died are answers all the same (a READ it
   * answered has taken its message), and this news may come before the old port's close:
   * they are taken first. No other batch sent on the old channel will be answered there:
   * the router sends them again, or fails them, on the new one.
   */
  replaced(shardId: number, end: AcceptorLinkEnd, error: ShardError): void {
    const old = this.#channels[shardId];
    old?.drain();
    old?.close();
    this.#channels[shardId] = this.#open(shardId, end);
    this.#sink?.onShardDown(shardId, error);
  }

  /** Closes the channels. (The router calls it once every batch sent has been answered.) */
  async close(): Promise<void> {
    for (const channel of this.#channels) channel.close();
  }

  nudge(shardId: number): void {
    this.#channels[shardId]?.nudge();
  }

  /** The shards' threads are the supervisor's: it describes them. */
  describe(): ShardInfo[] {
    return [];
  }

  async stats(): Promise<(StoreStats | null)[]> {
    return this.#ends.map(() => null);
  }

  #open(shardId: number, end: AcceptorLinkEnd): BatchChannel {
    return acceptorEnd(end.port, end.rings, (batch) => this.#sink?.onReply(shardId, batch)).listen();
  }
}
