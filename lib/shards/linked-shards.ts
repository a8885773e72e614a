import type { ShardError } from '../errors.js';
import type { StoreStats } from '../store/store.js';
import type { ShardBackend, ShardInfo, ShardSink } from './backend.js';
import type { ShardConfig } from './messages.js';
import { type BatchChannel, acceptorEnd } from './batch-channel.js';
import type { AcceptorLinkEnd } from './worker-shards.js';

// close() waits this long at most for the replies to batches already sent (a shard that
// restarts meanwhile answers them too); then the channels close regardless.
const CLOSE_WAIT_MS = 10_000;

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
  // Batches sent on each shard's current channel and not yet answered.
  readonly #outstanding: number[];
  #sink: ShardSink | null = null;
  #settled: (() => void) | null = null;

  constructor(ends: readonly AcceptorLinkEnd[], batchesInFlight: number) {
    this.size = ends.length;
    this.batchesInFlight = batchesInFlight;
    this.#ends = ends;
    this.#outstanding = ends.map(() => 0);
  }

  /** The shards are already running: this only opens the channels, reporting to `sink`. */
  async start(_config: ShardConfig, sink: ShardSink): Promise<void> {
    this.#sink = sink;
    this.#ends.forEach((end, shardId) => this.#channels.push(this.#open(shardId, end)));
  }

  send(shardId: number, batch: Buffer): void {
    (this.#outstanding[shardId] as number)++;
    (this.#channels[shardId] as BatchChannel).send(batch);
  }

  /**
   * Shard `shardId` was lost and replaced; `end` is the channel to the replacement. No
   * batch sent on the old channel will be answered there: the router sends them again,
   * or fails them, on the new one.
   */
  replaced(shardId: number, end: AcceptorLinkEnd, error: ShardError): void {
    this.#channels[shardId]?.close();
    this.#channels[shardId] = this.#open(shardId, end);
    this.#outstanding[shardId] = 0;
    this.#sink?.onShardDown(shardId, error);
    this.#checkSettled();
  }

  /** Closes the channels once every batch sent has been answered (or CLOSE_WAIT_MS passed). */
  async close(): Promise<void> {
    if (this.#outstanding.some((count) => count > 0)) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => (this.#settled = resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS))),
      ]);
      clearTimeout(timer);
    }
    for (const channel of this.#channels) channel.close();
  }

  /** The shards' threads are the supervisor's: it describes them. */
  describe(): ShardInfo[] {
    return [];
  }

  async stats(): Promise<(StoreStats | null)[]> {
    return this.#ends.map(() => null);
  }

  #open(shardId: number, end: AcceptorLinkEnd): BatchChannel {
    return acceptorEnd(end.port, end.rings, (batch) => {
      (this.#outstanding[shardId] as number)--;
      this.#sink?.onReply(shardId, batch);
      this.#checkSettled();
    }).listen();
  }

  #checkSettled(): void {
    if (this.#settled !== null && this.#outstanding.every((count) => count <= 0)) this.#settled();
  }
}
