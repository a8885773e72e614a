import { ShardError } from '../errors.js';
import type { StoreStats } from '../store/store.js';
import type { ShardBackend, ShardInfo, ShardSink } from './backend.js';
import type { ShardConfig } from './messages.js';
import { type BatchChannel, acceptorEnd } from './batch-channel.js';
import { PORT_GRACE_MS } from './worker-shard.js';
import type { AcceptorLinkEnd } from './worker-shards.js';

/** One shard as this thread sees it. */
interface Link {
  /** The channel to the shard's current incarnation; null between a loss and its replacement. */
  channel: BatchChannel | null;
  /** Batches sent while there was no channel: they go to the replacement, in order. */
  readonly held: Buffer[];
  /** The replacement's channel end, once told of it, while the lost one is still open. */
  next: { readonly end: AcceptorLinkEnd; readonly error: ShardError } | null;
  /** Reports the loss should the lost channel's port never close. */
  grace: NodeJS.Timeout | null;
}

/**
 * The shards as a further acceptor thread sees them: they run on worker threads the
 * server started and supervises on the thread that called listen(); this thread was
 * handed a channel to each (its link: its own pair of rings and port per shard), and is
 * handed the new one whenever a shard was replaced after a crash, which the router then
 * treats as it does on the listening thread (batches sent again, or failed).
 *
 * Two pieces of news say that a shard was lost, on two paths that can overtake each
 * other: its link port closes (after every reply it posted there), and the supervisor
 * hands over the replacement. The loss is reported to the router once the port has
 * closed, so every reply the lost shard gave is taken first; batches sent from then on
 * wait here for the replacement rather than go to a shard that is gone.
 */
export class LinkedShards implements ShardBackend {
  readonly size: number;
  readonly batchesInFlight: number;
  readonly #ends: readonly AcceptorLinkEnd[];
  readonly #links: Link[] = [];
  #sink: ShardSink | null = null;
  #closing = false;

  constructor(ends: readonly AcceptorLinkEnd[], batchesInFlight: number) {
    this.size = ends.length;
    this.batchesInFlight = batchesInFlight;
    this.#ends = ends;
  }

  /** The shards are already running: this only opens the channels, reporting to `sink`. */
  async start(_config: ShardConfig, sink: ShardSink): Promise<void> {
    this.#sink = sink;
    this.#ends.forEach((end, shardId) => {
      const link: Link = { channel: null, held: [], next: null, grace: null };
      this.#links.push(link);
      link.channel = this.#open(shardId, end);
    });
  }

  send(shardId: number, batch: Buffer): void {
    const link = this.#links[shardId] as Link;
    if (link.channel === null) link.held.push(batch);
    else link.channel.send(batch);
  }

  /**
   * Shard `shardId` was lost and replaced; `end` is the channel to the replacement. It
   * takes over once the lost shard's port has closed (or PORT_GRACE_MS from now, should
   * it stay open).
   */
  replaced(shardId: number, end: AcceptorLinkEnd, error: ShardError): void {
    const link = this.#links[shardId] as Link;
    // Replaced again before the first replacement took over: that one is gone too.
    link.next?.end.port.close();
    link.next = { end, error };
    if (link.channel === null) this.#takeOver(shardId, link);
    else link.grace ??= setTimeout(() => this.#lost(shardId, link, link.channel), PORT_GRACE_MS);
  }

  /** Closes the channels. (The router calls it once every batch sent has been answered.) */
  async close(): Promise<void> {
    this.#closing = true;
    for (const link of this.#links) {
      if (link.grace !== null) clearTimeout(link.grace);
      link.channel?.close();
      link.next?.end.port.close();
    }
  }

  nudge(shardId: number): void {
    this.#links[shardId]?.channel?.nudge();
  }

  /** The shards' threads are the supervisor's: it describes them. */
  describe(): ShardInfo[] {
    return [];
  }

  async stats(): Promise<(StoreStats | null)[]> {
    return this.#ends.map(() => null);
  }

  #open(shardId: number, end: AcceptorLinkEnd): BatchChannel {
    const channel = acceptorEnd(end.port, end.rings, (batch) => this.#sink?.onReply(shardId, batch)).listen();
    // After the channel's own close listener, which takes what the ring still holds.
    end.port.once('close', () => this.#lost(shardId, this.#links[shardId] as Link, channel));
    return channel;
  }

  /** The channel `channel` of shard `shardId` is done with: the loss is reported, and the replacement takes over if known. */
  #lost(shardId: number, link: Link, channel: BatchChannel | null): void {
    if (this.#closing || channel === null || link.channel !== channel) return;
    if (link.grace !== null) clearTimeout(link.grace);
    link.grace = null;
    // Replies the lost shard wrote before it died are answers all the same (a READ it
    // answered has taken its message).
    channel.drain();
    channel.close();
    link.channel = null;
    this.#sink?.onShardDown(shardId, link.next?.error ?? new ShardError('PH_ERR_SHARD_CRASHED', `shard ${shardId} was lost`));
    if (link.next !== null) this.#takeOver(shardId, link);
  }

  /** The replacement's channel opens, and the batches held meanwhile (sent again, or new) go to it in order. */
  #takeOver(shardId: number, link: Link): void {
    const { end } = link.next as NonNullable<Link['next']>;
    link.next = null;
    const channel = this.#open(shardId, end);
    link.channel = channel;
    for (const batch of link.held.splice(0)) channel.send(batch);
  }
}
