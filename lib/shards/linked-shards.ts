import type { MessagePort } from 'node:worker_threads';
import type { ShardError } from '../errors.js';
import type { StoreStats } from '../store/store.js';
import type { ShardBackend, ShardInfo, ShardSink } from './backend.js';
import type { ShardConfig } from './messages.js';
import { ByteRing } from './ring.js';
import { RingChannel } from './ring-channel.js';
import type { AcceptorLinkEnd } from './worker-shards.js';

/** One shard's channel as this thread holds it; replaced whole when the shard is. */
class LinkChannel {
  readonly #port: MessagePort;
  readonly #rings: RingChannel | null;
  #closed = false;

  constructor(end: AcceptorLinkEnd, reply: (batch: Buffer) => void) {
    this.#port = end.port;
    const deliver = (batch: Buffer): void => {
      if (!this.#closed) reply(batch);
    };
    if (end.rings === null) {
      this.#rings = null;
      end.port.on('message', (batch: Uint8Array) => deliver(Buffer.from(batch.buffer, batch.byteOffset, batch.byteLength)));
      return;
    }
    // A reply read from the ring is copied out: reply slots keep ranges of it until their
    // connections have written them, long after the ring has moved on.
    const rings = new RingChannel(new ByteRing(end.rings.requests), new ByteRing(end.rings.replies), end.port, (batch, inRing) => deliver(inRing ? copyOut(batch) : batch));
    this.#rings = rings;
    end.port.on('message', (batch: Uint8Array) => rings.fromPort(Buffer.from(batch.buffer, batch.byteOffset, batch.byteLength)));
    void rings.watch();
  }

  send(batch: Buffer): void {
    if (this.#closed) return;
    if (this.#rings !== null) this.#rings.send(batch);
    else this.#port.postMessage(batch, [batch.buffer as ArrayBuffer]);
  }

  close(): void {
    this.#closed = true;
    this.#rings?.close();
    this.#port.close();
  }
}

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
  readonly #channels: LinkChannel[] = [];
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
    (this.#channels[shardId] as LinkChannel).send(batch);
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

  #open(shardId: number, end: AcceptorLinkEnd): LinkChannel {
    return new LinkChannel(end, (batch) => {
      (this.#outstanding[shardId] as number)--;
      this.#sink?.onReply(shardId, batch);
      this.#checkSettled();
    });
  }

  #checkSettled(): void {
    if (this.#settled !== null && this.#outstanding.every((count) => count <= 0)) this.#settled();
  }
}

/** A reply batch in a buffer of its own, out of the ring it was read from. */
function copyOut(batch: Buffer): Buffer {
  const copy = Buffer.allocUnsafeSlow(batch.length);
  copy.set(batch);
  return copy;
}
