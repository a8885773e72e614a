import { copyBytes } from '../util/copy-bytes.js';
import { type PendingReply, repliesCancelled } from '../shards/router.js';
import { OP_COMPOSE, OP_READ, type ShardOp } from '../shards/messages.js';
import { Backlog, movedToward } from './backlog.js';
import { RingQueue } from '../util/ring-queue.js';

/** What a ReplyQueue writes to: the connection's socket, seen from the queue. */
export interface ReplyOutput {
  /** Writes the replies that are ready, oldest first, as one buffer. */
  write(replies: Buffer): void;
  /** True when nothing written before is still queued: a write now goes straight out. */
  idle(): boolean;
  /** Every reply before the end mark has been written: close the connection. */
  end(): void;
}

// The biggest reply batch a view may pin while a socket that was idle writes it out.
const MAX_PINNED_BYTES = 256 * 1024;

const WAITING = 0;
const FILLED = 1;
const ABORTED = 2;

// How much of the gap to its latest READ reply a connection's READ estimate closes: a
// quarter, so that one odd message moves it little and a run of big ones soon shows.
// (The thread's estimate, where new connections start, moves more slowly: Backlog.)
const READ_ESTIMATE_STEP = 4;

// Written slots kept for reuse per connection: a pipelining client reuses the same few
// slot objects instead of leaving one behind per command for the garbage collector.
const SPARE_SLOTS = 64;

// The queues with settled slots not yet written, written together by one microtask. Node
// 20's queueMicrotask makes an AsyncResource and a bound function per call: one per
// connection per turn was a third of what a command allocated at one command per read.
const settledQueues = new RingQueue<ReplyQueue>(64);
let settledScheduled = false;

class ReplySlot implements PendingReply {
  op: ShardOp;
  /** Bytes this command may hold in the server until its reply is written (see ReplyQueue). */
  cost: number;
  /** What it counts in its thread's backlog while in flight (see ReplyQueue.reserve). */
  backlogCost = 0;
  readonly #queue: ReplyQueue;
  state = WAITING;
  // The reply is source[start, end): a range of a reply batch, not a copy or a view, so
  // a batch of replies costs no object per reply.
  source: Buffer | null = null;
  start = 0;
  end = 0;
  /** The bytes are a copy of the slot's own, not a range of a shared reply batch. */
  owned = false;
  /** Its reply can never be written: the connection is gone or ends before it. */
  cancelled = false;
  /** Its place in its queue's numbering (see ReplyQueue.cancelAfter). */
  n = 0;

  constructor(queue: ReplyQueue, op: ShardOp, cost: number) {
    this.#queue = queue;
    this.op = op;
    this.cost = cost;
  }

  fill(source: Buffer, start: number, end: number): void {
    this.source = source;
    this.start = start;
    this.end = end;
    this.state = FILLED;
    this.#queue.settled();
  }

  abort(): void {
    this.state = ABORTED;
    // The connection ends at this slot: from now on it must take (and run) no more
    // commands, nor those it already took that wait behind this one.
    this.#queue.end();
    this.#queue.cancelAfter(this);
    this.#queue.settled();
  }
}

/**
 * One connection's replies in command order. Shards answer out of order; a slot is
 * reserved per command and the queue writes every settled slot at its head, once per
 * microtask however many slots settled meanwhile, so a reply batch from a shard turns
 * into at most one write per connection.
 *
 * An end mark (EXIT, a protocol error, shutdown) or an aborted slot (no answer came)
 * closes the connection once everything before it is written; nothing after it is sent.
 */
export class ReplyQueue {
  readonly #out: ReplyOutput;
  readonly #slots = new RingQueue<ReplySlot>(16);
  readonly #spare: ReplySlot[] = [];
  #flushScheduled = false;
  #bytesInFlight = 0;
  // What this connection's commands in flight count in its thread's backlog (see
  // reserve()), also counted in #backlog until the connection is gone.
  #backlogBytes = 0;
  // The size its READ replies have had lately (see READ_ESTIMATE_STEP); at first, the thread's.
  #readEstimate: number;
  readonly #backlog: Backlog;
  #gone = false;
  #ending = false;
  #ended = false;
  // Slots are numbered as reserved, so a slot's place in the queue is its number less
  // the head's. Every waiting slot numbered above #cancelledAbove is cancelled already.
  #nextN = 0;
  #cancelledAbove = Infinity;

  constructor(out: ReplyOutput, backlog: Backlog = new Backlog()) {
    this.#out = out;
    this.#backlog = backlog;
    this.#readEstimate = backlog.readEstimate;
  }

  /** Commands still waiting for their reply to be written. */
  get size(): number {
    return this.#slots.size;
  }

  /** What the commands awaiting replies may hold in the server, by their reserve() costs. */
  get bytesInFlight(): number {
    return this.#bytesInFlight;
  }

  /** What the commands awaiting replies count in the thread's backlog (see reserve()). */
  get backlogBytes(): number {
    return this.#backlogBytes;
  }

  /** The size this connection's READ replies have had lately, in bytes. */
  get readEstimate(): number {
    return this.#readEstimate;
  }

  /** Whether the connection holds its fair share of a backed-up thread and must wait for replies (see Backlog). */
  get heldBack(): boolean {
    return this.#backlog.holdsBack(this.#backlogBytes);
  }

  /** True while the oldest command still waits for its shard's answer. */
  get awaitingShard(): boolean {
    return this.#slots.peek()?.state === WAITING;
  }

  /** True once end() was called or a slot aborted: no more commands may be queued. */
  get ending(): boolean {
    return this.#ending;
  }

  /**
   * A slot for the next command's reply. `cost` is what the command may hold in the
   * server until its reply is written: a COMPOSE its message (queued for its shard), a
   * READ the largest reply it could get.
   *
   * In the thread's backlog a COMPOSE counts its message, and a READ the size this
   * connection's READ replies have had lately: what a READ brings back is known only
   * once it is answered, and counting the largest reply it could get would hold back
   * every client that pipelines READs of small messages. So a client draining big
   * messages is held to its share as one that sends them is, after its first replies.
   */
  reserve(op: ShardOp, cost: number): PendingReply {
    let slot = this.#spare.pop();
    if (slot === undefined) {
      slot = new ReplySlot(this, op, cost);
    } else {
      slot.op = op;
      slot.cost = cost;
      slot.state = WAITING;
      slot.owned = false;
      slot.cancelled = false;
    }
    slot.n = this.#nextN++;
    slot.backlogCost = op === OP_COMPOSE ? cost : op === OP_READ ? this.#readEstimate : 0;
    this.#slots.push(slot);
    this.#bytesInFlight += cost;
    this.#countBacklog(slot.backlogCost);
    return slot;
  }

  /** Closes the connection after the replies reserved so far. */
  end(): void {
    if (this.#ending) return;
    this.#ending = true;
    this.settled();
  }

  /**
   * The connection is gone: no reply can be written, so the commands still waiting are
   * cancelled (a READ that has not left for its shard yet will take nothing).
   */
  cancel(): void {
    this.cancelAfter(null);
    this.#leaveBacklog();
  }

  // No more replies will be written: what is still in flight stops counting in the
  // thread's backlog now, not when the socket closes (seconds later, for a peer that lingers).
  #leaveBacklog(): void {
    this.#countBacklog(-this.#backlogBytes);
    this.#gone = true;
  }

  /** Backlog bytes coming into flight (or, negative, leaving it), in this queue and its thread's backlog. */
  #countBacklog(bytes: number): void {
    if (this.#gone || bytes === 0) return;
    const before = this.#backlogBytes;
    this.#backlogBytes = before + bytes;
    const backlog = this.#backlog;
    backlog.bytes += bytes;
    if (before === 0) backlog.connections++;
    else if (this.#backlogBytes === 0) backlog.connections--;
  }

  /**
   * @internal Cancels the commands after `slot` (every one, for null) still waiting for
   * their shards. Each slot is looked at once however many abort: only those between
   * `slot` and the last slot cancelled from are new.
   */
  cancelAfter(slot: ReplySlot | null): void {
    const from = slot === null ? -1 : slot.n;
    if (from >= this.#cancelledAbove) return;
    const slots = this.#slots;
    const head = slots.peek();
    const end = head === undefined ? 0 : Math.min(slots.size, this.#cancelledAbove - head.n + 1);
    let count = 0;
    for (let i = head === undefined ? 0 : Math.max(0, from + 1 - head.n); i < end; i++) {
      const each = slots.at(i) as ReplySlot;
      if (each.state === WAITING && !each.cancelled) {
        each.cancelled = true;
        count++;
      }
    }
    this.#cancelledAbove = from;
    if (count > 0) repliesCancelled();
  }

  /** @internal A slot settled (or the end was marked): write what is ready, soon. */
  settled(): void {
    if (this.#flushScheduled || this.#ended) return;
    this.#flushScheduled = true;
    settledQueues.push(this);
    if (!settledScheduled) {
      settledScheduled = true;
      queueMicrotask(ReplyQueue.#writeAllSettled);
    }
  }

  /** Writes every queue that settled since the last time; a queue that settles meanwhile is written too. */
  static readonly #writeAllSettled = (): void => {
    try {
      for (let queue = settledQueues.shift(); queue !== undefined; queue = settledQueues.shift()) queue.#writeSettled();
    } finally {
      settledScheduled = settledQueues.size > 0;
      // Only after a write threw: the queues behind it are still owed their turn.
      if (settledScheduled) queueMicrotask(ReplyQueue.#writeAllSettled);
    }
  };

  /**
   * Replies that wait behind an unanswered command (another shard's) are copied out of
   * their reply batches, so a waiting connection does not keep whole batches alive.
   */
  #ownWaiting(): void {
    const slots = this.#slots;
    for (let i = 1, slot = slots.at(1); slot !== undefined; slot = slots.at(++i)) {
      if (slot.state !== FILLED || slot.owned) continue;
      const source = slot.source as Buffer;
      slot.source = Buffer.from(source.subarray(slot.start, slot.end));
      slot.start = 0;
      slot.end = slot.source.length;
      slot.owned = true;
    }
  }

  #take(slot: ReplySlot): void {
    this.#bytesInFlight -= slot.cost;
    this.#countBacklog(-slot.backlogCost);
    if (slot.op === OP_READ) {
      const bytes = slot.end - slot.start;
      this.#readEstimate = movedToward(this.#readEstimate, bytes, READ_ESTIMATE_STEP);
      this.#backlog.readReplied(bytes);
    }
    slot.source = null;
    this.#slots.shift();
    // Written, and no longer known to any router: free to serve another command.
    if (this.#spare.length < SPARE_SLOTS) this.#spare.push(slot);
  }

  #writeSettled(): void {
    this.#flushScheduled = false;
    if (this.#ended) return;
    const slots = this.#slots;
    let head = slots.peek();
    let count = 0;
    let bytes = 0;
    // Replies that follow each other in one reply batch (a pipeline's, answered by one
    // shard) are one range of it: written as a view, with no copy.
    let contiguous = true;
    for (let slot = head, last: ReplySlot | null = null; slot !== undefined && slot.state === FILLED; last = slot, slot = slots.at(count)) {
      if (last !== null && (slot.source !== last.source || slot.start !== last.end)) contiguous = false;
      count++;
      bytes += slot.end - slot.start;
    }
    if (count > 0) {
      // One buffer, one write: a reply batch becomes one syscall per connection.
      let out: Buffer;
      const first = head as ReplySlot;
      const source = first.source as Buffer;
      if (contiguous) {
        // A view keeps its whole reply batch alive while the socket holds it. When the
        // socket has nothing queued the write goes straight to the kernel and nothing
        // is held; otherwise a small part of a big batch is copied, so a slow reader
        // pins only its own bytes.
        const start = first.start;
        const view = bytes * 4 >= source.length || (source.length <= MAX_PINNED_BYTES && this.#out.idle());
        out = view ? source.subarray(start, start + bytes) : Buffer.from(source.subarray(start, start + bytes));
        for (let i = 0; i < count; i++) this.#take(slots.peek() as ReplySlot);
      } else {
        out = Buffer.allocUnsafe(bytes);
        let at = 0;
        for (let i = 0; i < count; i++) {
          const slot = slots.peek() as ReplySlot;
          at += copyBytes(slot.source as Buffer, slot.start, slot.end, out, at);
          this.#take(slot);
        }
      }
      this.#out.write(out);
      // Writing can let the connection take more commands (and mark the end) at once:
      // look at the head again, or the end could pass commands that are still owed.
      head = slots.peek();
    }
    if (head !== undefined && head.state === WAITING) this.#ownWaiting();
    const aborted = head !== undefined && head.state === ABORTED;
    if (aborted || (this.#ending && head === undefined)) {
      this.#ending = true;
      this.#ended = true;
      this.#leaveBacklog();
      this.#out.end();
    }
  }
}
