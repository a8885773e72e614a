import type { ShardError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { StoreStats } from '../store/store.js';
import type { ComposeCommand } from '../protocol/commands.js';
import { REPLY_MESSAGE_FAILED } from '../protocol/encode.js';
import { ByteWriter, ownCopy } from '../util/bytes.js';
import { RingQueue } from '../util/ring-queue.js';
import { shardIndex } from '../util/shard-hash.js';
import type { ShardBackend, ShardInfo, ShardSink } from './backend.js';
import { ReplyCounters } from './counters.js';
import {
  OP_COMPOSE,
  ReplyReader,
  type ShardConfig,
  type ShardOp,
  beginBatch,
  markResent,
  sealBatch,
  seqAfter,
  withdrawReads,
  writeCompose,
  writeCount,
  writeRead,
} from './messages.js';

// Bumped whenever pending replies are cancelled: a batch is searched for cancelled READs
// only when this has moved since its channel last looked, so the search costs nothing
// while no connection ends with commands unsent.
let cancellations = 0;

/** Some pending replies were just cancelled (see PendingReply.cancelled). */
export function repliesCancelled(): void {
  cancellations++;
}

/** Where a shard's answer to one command goes. */
export interface PendingReply {
  readonly op: ShardOp;
  /**
   * Its connection is gone, or ends before this command's reply (see repliesCancelled()):
   * a READ not yet sent to its shard is withdrawn, since it would take a message that
   * nobody can be given.
   */
  readonly cancelled: boolean;
  /** The reply's wire bytes: source[start, end), a range of a reply batch. */
  fill(source: Buffer, start: number, end: number): void;
  /** No answer can be given: the connection must be dropped. */
  abort(): void;
}

interface SentBatch {
  readonly seq: number;
  /** How many commands it carries: the first this many of the channel's pending replies. */
  readonly requests: number;
  /** A copy kept for sending again after a crash (durable stores only). */
  readonly copy: Buffer | null;
  attempts: number;
  /** When it was (last) sent, performance.now(): its round trip is a metric. */
  sentAt: number;
}

interface Channel {
  readonly writer: ByteWriter;
  // Requests of sent and unsent batches, oldest first. A shard answers a batch's
  // records in request order and batches in send order, so replies pair with this
  // queue without request ids.
  readonly pending: RingQueue<PendingReply>;
  readonly sent: RingQueue<SentBatch>;
  nextSeq: number;
  /** The seq of the last batch whose reply has arrived. */
  acked: number;
  /** Commands in the writer, not yet sent. */
  unsent: number;
  /** The shard is gone for good (its first start failed): every batch is failed, not sent. */
  down: boolean;
  /** `cancellations` when this channel last looked for cancelled READs. */
  seenCancellations: number;
}

// A batch that has killed its shard this many times is not sent again.
const MAX_ATTEMPTS = 3;

// A shard that has not answered a batch for this long is logged and nudged.
export const STALL_MS = 5_000;


const PENDING_MIN_CAPACITY = 4096;

export interface RouterOptions {
  /**
   * The shards' stores are durable and journal their replies: after a shard restarts,
   * batches it has not answered are sent again (and answered from its journal if they
   * were committed) instead of being failed.
   */
  readonly replay: boolean;
  /**
   * The shards' store lives outside them (Redis) and has no journal: a batch a lost shard
   * did not answer may have been applied, so its COMPOSEs are dropped, not failed.
   */
  readonly sharedStore?: boolean;
  readonly logger: Logger;
  /** A batch unanswered this long is logged (PH_ERR_SHARD_STALLED) and its shard nudged; STALL_MS by default. */
  readonly stallMs?: number;
}

/**
 * Routes each command to the shard that owns its user (COMPOSE: the recipient; LOGIN and
 * READ: the logged-in user) and pairs replies with the commands that asked for them. It
 * is its backend's event sink: reply batches and lost shards come straight here.
 *
 * Commands for one shard gathered during an event-loop turn leave as one batch, in a
 * setImmediate after the turn's I/O callbacks, so many connections share one postMessage;
 * while a shard still owes a reply, its next batch keeps growing and leaves when the
 * reply arrives (the backend's batchesInFlight). Waking a thread costs far more than a
 * command does (tens of microseconds on a VM, see bench/RESULTS.md), so while a shard
 * works the next batch grows instead of waking it again: under load batches get bigger
 * and hops fewer; when idle, a command still leaves at once. For a durable store this
 * is group commit.
 */
export class ShardRouter implements ShardSink {
  /** Replies by kind and batch samples, for metrics. */
  readonly counters = new ReplyCounters();
  readonly #backend: ShardBackend;
  readonly #options: RouterOptions;
  readonly #channels: Channel[] = [];
  #flushScheduled = false;
  // close() waits for every command to be answered; this settles it.
  #whenIdle: (() => void) | null = null;
  #closed = false;
  #closing: Promise<void> | null = null;
  readonly #flush = (): void => this.#sendBatches();
  // Looks for batches unanswered for stallMs; set while any batch is in flight.
  #stallWatch: NodeJS.Timeout | null = null;
  // Per shard, when the batch last reported as stalled was sent: each sending of a batch
  // is reported once (one sent again to a replacement is a new sending).
  readonly #stalledSentAt: number[] = [];

  constructor(backend: ShardBackend, options: RouterOptions) {
    this.#backend = backend;
    this.#options = options;
    for (let i = 0; i < backend.size; i++) {
      // A batch's pending replies fill and empty the queue every turn: room for a big one stays.
      this.#channels.push({ writer: new ByteWriter(), pending: new RingQueue(PENDING_MIN_CAPACITY), sent: new RingQueue(), nextSeq: 1, acked: 0, unsent: 0, down: false, seenCancellations: cancellations });
    }
  }

  /** Starts the shards, with this router as their sink; resolves when all are ready. */
  start(config: ShardConfig): Promise<void> {
    return this.#backend.start(config, this);
  }

  /**
   * Ends the shards once every command given to the router has its answer: what waits
   * behind a batch in flight is still sent, so no command is left without one (or
   * without its failure, should a shard be lost meanwhile). No command may come after.
   * Every call gets the same promise.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    if (!this.#idle()) await new Promise<void>((resolve) => (this.#whenIdle = resolve));
    this.#closed = true;
    this.#stopStallWatch();
    await this.#backend.close();
  }

  /** The shards and the threads they run on. */
  describe(): ShardInfo[] {
    return this.#backend.describe();
  }

  /** What each shard's store holds (null for a shard that cannot say now). */
  stats(): Promise<(StoreStats | null)[]> {
    return this.#backend.stats();
  }

  shardFor(name: Uint8Array): number {
    return shardIndex(name, this.#channels.length);
  }

  /** LOGIN: how many messages wait for `user`. */
  count(user: Buffer, reply: PendingReply): void {
    writeCount(this.#enqueue(this.shardFor(user), reply), user);
  }

  /** COMPOSE from `from`: the recipient and message are ranges of the command's buffers. */
  compose(command: ComposeCommand, from: Buffer, reply: PendingReply): void {
    const { toSource, toStart, toEnd } = command;
    const writer = this.#enqueue(shardIndex(toSource, this.#channels.length, toStart, toEnd), reply);
    writeCompose(writer, toSource, toStart, toEnd, from, command.source, command.start, command.end);
  }

  read(user: Buffer, reply: PendingReply): void {
    writeRead(this.#enqueue(this.shardFor(user), reply), user);
  }

  /** A shard's reply batch: one record per request of its oldest unanswered batch. */
  onReply(shardId: number, batch: Buffer): void {
    const channel = this.#channels[shardId] as Channel;
    const answered = channel.sent.shift();
    if (answered === undefined) throw new Error(`shard ${shardId} answered a batch that was never sent`);
    channel.acked = answered.seq;
    const { pending } = channel;
    const counters = this.counters;
    counters.batches.record(shardId, answered.requests, (performance.now() - answered.sentAt) / 1000);
    const records = new ReplyReader(batch);
    let count = 0;
    while (records.next()) {
      const reply = nextPending(pending, shardId);
      if (records.aborted) {
        counters.aborted++;
        reply.abort();
      } else {
        // A cancelled command's reply is never written (and a withdrawn READ's is a count).
        if (!reply.cancelled) counters.reply(reply.op, batch, records.start, records.end);
        reply.fill(batch, records.start, records.end);
      }
      count++;
    }
    if (count !== answered.requests) {
      throw new Error(`shard ${shardId} answered batch ${answered.seq} with ${count} replies for ${answered.requests} requests`);
    }
    // What gathered while the shard worked leaves now. (After the pairing above: an
    // inline shard answers within send(), re-entering here.)
    if (channel.writer.length > 0 && channel.sent.size < this.#backend.batchesInFlight) this.#send(shardId, channel);
    else if (this.#whenIdle !== null) this.#settleIfIdle();
  }

  /**
   * A shard was lost and replaced. With durable stores its unanswered batches go to the
   * replacement again, in order; it answers those it had committed from its journal.
   * Otherwise nothing sent to it will be answered: a COMPOSE gets MESSAGE FAILED (the
   * message is not stored; with a shared store it may be, and the COMPOSE drops its
   * connection instead), and a LOGIN or READ drops its connection, since any answer
   * could be wrong. Commands not yet sent go to the replacement either way; with no
   * replacement (`replaced` false) they are failed the same way, as is any sent later.
   * A durable shard that died each time a batch was sent gets it no more: the batches
   * it had are failed as with a shared store, since an earlier try may have committed
   * them (the shard may have died after a commit, over another thread's batch).
   */
  onShardDown(shardId: number, _error: ShardError, replaced = true): void {
    const channel = this.#channels[shardId] as Channel;
    const { logger } = this.#options;
    if (!replaced) channel.down = true;
    if (replaced && this.#options.replay) {
      if (this.#resend(shardId, channel)) {
        if (channel.sent.size > 0) logger.warn({ shard: shardId }, `shard ${shardId}: sent its ${channel.sent.size} unanswered batch(es) again, to its replacement`);
        return;
      }
      this.#failSent(shardId, channel, true);
      return;
    }
    this.#failSent(shardId, channel, this.#options.sharedStore === true);
  }

  /**
   * Fails every batch sent to `shardId` and not answered (see onShardDown); what gathered
   * meanwhile leaves next (to a replacement, or to be failed in turn). With
   * `mayBeApplied`, a COMPOSE's outcome is unknown: it drops its connection rather than
   * be told MESSAGE FAILED.
   */
  #failSent(shardId: number, channel: Channel, mayBeApplied = false): void {
    const { logger } = this.#options;
    let failed = 0;
    let dropped = 0;
    for (let batch = channel.sent.shift(); batch !== undefined; batch = channel.sent.shift()) {
      for (let i = 0; i < batch.requests; i++) {
        const reply = nextPending(channel.pending, shardId);
        if (reply.op === OP_COMPOSE && !mayBeApplied) {
          this.counters.messageFailed++;
          reply.fill(REPLY_MESSAGE_FAILED, 0, REPLY_MESSAGE_FAILED.length);
          failed++;
        } else {
          this.counters.aborted++;
          reply.abort();
          dropped++;
        }
      }
    }
    if (failed + dropped > 0) {
      logger.warn({ shard: shardId, failed, dropped }, `shard ${shardId}: ${failed} COMPOSE(s) it had not answered got MESSAGE FAILED; the connections of ${dropped} other command(s) were dropped`);
    }
    if (channel.writer.length > 0) this.#scheduleFlush();
    else if (this.#whenIdle !== null) this.#settleIfIdle();
  }

  #startStallWatch(): void {
    const stallMs = this.#options.stallMs ?? STALL_MS;
    this.#stallWatch = setInterval(() => this.#checkStalls(stallMs), Math.max(10, Math.floor(stallMs / 5)));
    this.#stallWatch.unref();
  }

  #stopStallWatch(): void {
    if (this.#stallWatch !== null) clearInterval(this.#stallWatch);
    this.#stallWatch = null;
  }

  /**
   * A shard whose oldest unanswered batch was sent stallMs ago or more: said once per
   * batch, and nudged, in case one side slept through a wake-up. A durable shard on a slow
   * disk, or one whose Redis is slow to answer, is reported too: its users wait as long.
   */
  #checkStalls(stallMs: number): void {
    const now = performance.now();
    let inFlight = false;
    this.#channels.forEach((channel, shardId) => {
      const oldest = channel.sent.peek();
      if (oldest === undefined) return;
      inFlight = true;
      const waited = now - oldest.sentAt;
      if (waited < stallMs || this.#stalledSentAt[shardId] === oldest.sentAt) return;
      this.#stalledSentAt[shardId] = oldest.sentAt;
      this.counters.stalls++;
      this.#options.logger.warn(
        { code: 'PH_ERR_SHARD_STALLED', shard: shardId, seconds: Math.round(waited / 100) / 10, waiting: channel.pending.size },
        `shard ${shardId} has not answered a batch sent ${(waited / 1000).toFixed(1)} s ago; ${channel.pending.size} command(s) wait on it`,
      );
      this.#backend.nudge?.(shardId);
    });
    // Nothing in flight: the watch sleeps until the next batch is sent.
    if (!inFlight) this.#stopStallWatch();
  }

  /** Nothing waits to be sent or answered. */
  #idle(): boolean {
    return this.#channels.every((channel) => channel.writer.length === 0 && channel.sent.size === 0);
  }

  #settleIfIdle(): void {
    if (!this.#idle()) return;
    const settle = this.#whenIdle;
    this.#whenIdle = null;
    settle?.();
  }

  /** Sends the unanswered batches again; false if one has failed too often. */
  #resend(shardId: number, channel: Channel): boolean {
    for (const batch of channel.sent) {
      if (batch.attempts >= MAX_ATTEMPTS) {
        this.#options.logger.error({ code: 'PH_ERR_SHARD_CRASHED', shard: shardId }, `shard ${shardId}: batch ${batch.seq} was sent ${batch.attempts} times and its shard died each time; the connections of its commands (and of those sent with it) are dropped, since some may have been applied`);
        return false;
      }
    }
    // Its commands are the first of the pending replies, batch after batch.
    let first = 0;
    for (const batch of channel.sent) {
      batch.attempts++;
      batch.sentAt = performance.now();
      const again = ownCopy(batch.copy as Buffer);
      // Only a batch sent again can have been applied already: the flag tells the shard
      // to look in its journal, which it skips otherwise.
      markResent(again);
      // A READ whose connection closed meanwhile takes nothing if the batch was not
      // applied; if it was, the journal answers and the records are not read.
      this.#withdrawCancelled(channel, again, first);
      first += batch.requests;
      this.#backend.send(shardId, again);
    }
    return true;
  }

  #enqueue(shardId: number, reply: PendingReply): ByteWriter {
    if (this.#closed) throw new Error('a command was routed after the router closed');
    const channel = this.#channels[shardId] as Channel;
    channel.pending.push(reply);
    if (channel.writer.length === 0) beginBatch(channel.writer);
    channel.unsent++;
    this.#scheduleFlush();
    return channel.writer;
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(this.#flush);
  }

  #sendBatches(): void {
    this.#flushScheduled = false;
    for (let shardId = 0; shardId < this.#channels.length; shardId++) {
      const channel = this.#channels[shardId] as Channel;
      if (channel.writer.length > 0 && channel.sent.size < this.#backend.batchesInFlight) this.#send(shardId, channel);
    }
  }

  /** Withdraws the cancelled READs of `batch`, whose commands are the pending replies from `first` on. */
  #withdrawCancelled(channel: Channel, batch: Buffer, first: number): void {
    withdrawReads(batch, (index) => (channel.pending.at(first + index) as PendingReply).cancelled);
  }

  #send(shardId: number, channel: Channel): void {
    const batch = this.#backend.readsInPlace === true ? channel.writer.takeInPlace() : channel.writer.take();
    if (channel.seenCancellations !== cancellations) {
      channel.seenCancellations = cancellations;
      this.#withdrawCancelled(channel, batch, channel.pending.size - channel.unsent);
    }
    const seq = channel.nextSeq;
    channel.nextSeq = seqAfter(seq);
    sealBatch(batch, seq, channel.acked);
    channel.sent.push({ seq, requests: channel.unsent, copy: this.#options.replay ? ownCopy(batch) : null, attempts: 1, sentAt: performance.now() });
    channel.unsent = 0;
    if (channel.down) {
      this.#failSent(shardId, channel);
      return;
    }
    this.#backend.send(shardId, batch);
    // Unanswered once sent (all but an inline shard over memory or SQLite): watched.
    if (this.#stallWatch === null && channel.sent.size > 0) this.#startStallWatch();
  }
}

/** The command the shard's next reply belongs to; a reply with none is a broken shard. */
function nextPending(pending: RingQueue<PendingReply>, shardId: number): PendingReply {
  const reply = pending.shift();
  if (reply === undefined) throw new Error(`shard ${shardId} sent more replies than it was sent commands`);
  return reply;
}
