import { PackedMailbox } from './packed-mailbox.js';
import { PagePool } from './page-pool.js';
import { SenderTable, senderCost } from './sender-table.js';
import { sweepDue, worthSweepingAtCap } from './sweep.js';
import {
  ENQUEUED,
  type EnqueueResult,
  MAILBOX_FULL,
  type MailboxStore,
  MessageSlot,
  STORE_UNAVAILABLE,
  type StoreLimits,
  type StoreStats,
  type StoredMessage,
  isRanged,
} from './store.js';

// What a mailbox costs besides its chunks and its name (its map entry, its object and
// chunk list), as counted against maxBytes: measured at 430-450 bytes of V8 heap.
export const MAILBOX_OVERHEAD_BYTES = 450;

// Pages given back must be more than this fraction of maxBytes before the pool is packed.
const COMPACT_FLOOR_FRACTION = 8;

/** What a mailbox named `user` costs besides its chunks, as counted against maxBytes. */
export function mailboxCost(user: string): number {
  return MAILBOX_OVERHEAD_BYTES + user.length;
}

export interface MemoryStoreOptions extends StoreLimits {
  /** Past this many bytes held (message chunks, pages given back but still held, mailboxes and senders), COMPOSE fails. Default: no cap. */
  readonly maxBytes?: number;
}

/**
 * Mailboxes in memory: fast, and gone when the process ends. Each mailbox packs its
 * messages into byte chunks (PackedMailbox), pages of one PagePool, and senders are
 * interned (SenderTable), so a stored 64-byte message costs about 67 bytes, as in a
 * Redis list.
 */
export class MemoryStore implements MailboxStore {
  readonly #limits: StoreLimits;
  readonly #maxBytes: number;
  readonly #maxMailboxes: number;
  // Chunks and mailboxes; the senders' cost is the SenderTable's heldBytes.
  #bytes = 0;
  // Kept as messages come and go: adding up every mailbox at each metrics scrape would
  // cost as much as there are mailboxes.
  #messages = 0;
  readonly #boxes = new Map<string, PackedMailbox>();
  // Where every mailbox's chunks come from.
  #pool = new PagePool();
  #senders = new SenderTable();
  // What dequeue() returns, refilled each time.
  readonly #out = new MessageSlot();
  // Emptied mailboxes still in the map. They are swept out in bulk once they are many,
  // so names that were only ever written to once do not stay forever, yet a mailbox that
  // keeps emptying and filling is not deleted and created again every time (and the map
  // not rehashed with it).
  #empty = 0;

  constructor(options: MemoryStoreOptions) {
    this.#limits = options;
    this.#maxBytes = options.maxBytes ?? Infinity;
    this.#maxMailboxes = options.maxMailboxes ?? Infinity;
  }

  /**
   * Bytes held, as counted against maxBytes: chunks, pages given back but still held in
   * the pool's slabs, each mailbox's own cost, and the senders'.
   */
  get bytes(): number {
    return this.#bytes + this.#pool.freeBytes + this.#senders.heldBytes;
  }

  batch<T>(work: () => T): T {
    return work();
  }

  enqueue(user: string, message: StoredMessage): EnqueueResult {
    const ranged = isRanged(message);
    const length = ranged ? message.end - message.start : message.body.length;
    const senders = this.#senders;
    let box = this.#boxes.get(user);
    if (box !== undefined && box.count >= this.#limits.maxMessagesPerUser) return MAILBOX_FULL;
    const before = box?.bytes ?? 0;
    const { from } = message;
    const known = senders.find(from);
    // A new sender costs too: uncounted, a flood of messages from ever new names would
    // hold far more than the cap in names alone.
    const cost =
      (box === undefined ? mailboxCost(user) + PackedMailbox.firstChunkFor(length) : box.growthFor(length)) + (known === -1 ? senderCost(from) : 0);
    // Emptied mailboxes still in the map count too: they hold the same heap.
    if (this.bytes + cost > this.#maxBytes || (box === undefined && this.#boxes.size >= this.#maxMailboxes)) {
      // What is held for nothing (emptied mailboxes, senders of messages all read) goes
      // first, then the message is looked at again: a drained store never stays full.
      return this.#reclaim() ? this.enqueue(user, message) : STORE_UNAVAILABLE;
    }
    if (box === undefined) {
      box = new PackedMailbox(this.#pool);
      this.#boxes.set(user, box);
      this.#bytes += mailboxCost(user);
    } else if (box.count === 0) {
      this.#empty--;
    }
    const sender = senders.acquire(from, known);
    if (ranged) {
      box.push(sender, message.source, message.start, message.end);
    } else {
      const { body } = message;
      box.push(sender, body, 0, body.length);
    }
    this.#bytes += box.bytes - before;
    this.#messages++;
    return ENQUEUED;
  }

  /** The message is the store's own, refilled by the next call, its bytes the mailbox's memory. */
  dequeue(user: string): StoredMessage | null {
    const box = this.#boxes.get(user);
    if (box === undefined) return null;
    const before = box.bytes;
    if (!box.shift()) return null;
    this.#bytes -= before - box.bytes;
    this.#messages--;
    const out = this.#out;
    const senders = this.#senders;
    out.from = senders.name(box.senderId);
    out.fromBytes = senders.bytes(box.senderId);
    out.source = box.source;
    out.start = box.bodyStart;
    out.end = box.bodyEnd;
    senders.release(box.senderId);
    if (box.count === 0 && sweepDue(++this.#empty, this.#boxes.size)) this.#sweep();
    return out;
  }

  count(user: string): number {
    return this.#boxes.get(user)?.count ?? 0;
  }

  /** `bytes` is what counts against maxBytes (see the `bytes` getter). */
  stats(): StoreStats {
    return { messages: this.#messages, bytes: this.bytes };
  }

  close(): void {
    this.#boxes.clear();
    this.#pool = new PagePool();
    this.#senders = new SenderTable();
    this.#bytes = 0;
    this.#messages = 0;
    this.#empty = 0;
  }

  /**
   * At the cap: sweeps the emptied mailboxes and the unused senders now if they are at
   * least half of their map (so sweeps stay amortized O(1) per entry, and none runs
   * twice in a row), then packs the pool if it is mostly pages given back. True when it
   * freed anything.
   */
  #reclaim(): boolean {
    const senders = this.#senders.reclaim();
    const boxes = worthSweepingAtCap(this.#empty, this.#boxes.size);
    if (boxes) this.#sweep();
    return this.#compact() || senders || boxes;
  }

  /**
   * When the pool holds more than an eighth of the cap in pages given back (slabs kept
   * for a few chunks each, as when most mailboxes were read and a scattered few were
   * not; pages of one size cannot serve chunks of another), copies every mailbox's
   * chunks into a new pool and drops the old one. A compaction walks every mailbox and
   * copies at most the cap, and the next needs an eighth of the cap given back again: at
   * most 8 bytes copied per byte read, however little the pool itself holds (big
   * messages have chunks of their own), never a walk per page given back. True when it
   * ran.
   */
  #compact(): boolean {
    const pool = this.#pool;
    if (pool.freeBytes <= this.#maxBytes / COMPACT_FLOOR_FRACTION) return false;
    const fresh = new PagePool();
    for (const box of this.#boxes.values()) box.moveTo(fresh);
    this.#pool = fresh;
    return true;
  }

  #sweep(): void {
    for (const [user, box] of this.#boxes) {
      if (box.count > 0) continue;
      this.#boxes.delete(user);
      this.#bytes -= mailboxCost(user) + box.bytes;
      box.release();
    }
    this.#empty = 0;
  }
}
