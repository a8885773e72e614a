/**
 * The one contract every mailbox backend meets (test/store/store.contract.ts checks it).
 * A store belongs to one shard, which calls it from one thread, one command at a time:
 * no locking is needed inside.
 *
 * Expected outcomes are values, not throws: a full mailbox is `{ ok: false }`, an empty
 * one is `null`.
 */
export interface StoredMessage {
  readonly from: string;
  readonly body: Uint8Array;
}

/**
 * A message whose bytes are also given as ranges, for the hot path: the shard hands
 * these to enqueue() and a store may return one from dequeue(), so neither side makes a
 * Buffer view per message. `body` is then source[start, end) and `fromBytes` the
 * sender's name in bytes (names are ASCII).
 */
export interface RangedMessage extends StoredMessage {
  readonly source: Uint8Array;
  readonly start: number;
  readonly end: number;
  readonly fromBytes: Uint8Array;
}

/** A RangedMessage that can be refilled: one per shard or store, reused for every message. */
export class MessageSlot implements RangedMessage {
  from = '';
  fromBytes: Uint8Array = EMPTY;
  source: Uint8Array = EMPTY;
  start = 0;
  end = 0;

  get body(): Uint8Array {
    return this.source.subarray(this.start, this.end);
  }
}

const EMPTY = new Uint8Array(0);

export function isRanged(message: StoredMessage): message is RangedMessage {
  return message instanceof MessageSlot;
}

export type EnqueueResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: 'full' | 'unavailable' };

export const ENQUEUED: EnqueueResult = Object.freeze({ ok: true });
export const MAILBOX_FULL: EnqueueResult = Object.freeze({ ok: false, reason: 'full' });
export const STORE_UNAVAILABLE: EnqueueResult = Object.freeze({ ok: false, reason: 'unavailable' });

export interface MailboxStore {
  /**
   * Runs the commands of one batch as a unit. A durable store applies them in one
   * transaction and returns only once it is committed (group commit); if it cannot
   * commit, it throws a StoreError and none of the batch took effect.
   */
  batch<T>(work: () => T): T;
  /**
   * Appends to `user`'s mailbox unless it already holds the maximum. The message's bytes
   * are only valid during the call: a store copies what it keeps.
   */
  enqueue(user: string, message: StoredMessage): EnqueueResult;
  /**
   * Removes and returns the oldest message for `user`, or null when there is none. The
   * body may be a view of the store's own memory, valid until the store's next call:
   * copy it to keep it.
   */
  dequeue(user: string): StoredMessage | null;
  count(user: string): number;
  close(): void;
  /** What the store holds, for metrics; a store that cannot tell cheaply leaves it out. */
  stats?(): StoreStats;
  /** Present on durable stores: lets a restarted shard answer a batch it already applied. */
  readonly journal?: BatchJournal;
}

/**
 * A store reached over a network (Redis): the same calls, answered with promises. Calls
 * made in one event-loop turn travel together (one pipeline), and their promises settle
 * in any order; a shard issues a whole batch, then writes the answers in request order.
 *
 * Expected outcomes are values, as for MailboxStore; so is a write the store certainly
 * did not apply because it cannot be reached (`{ ok: false, reason: 'unavailable' }`).
 * When no true answer can be given, a call rejects with a StoreError and the shard drops
 * the asking connection: a read that failed (PH_ERR_STORE_UNAVAILABLE), or a write whose
 * outcome is unknown (PH_ERR_STORE_OUTCOME_UNKNOWN, PH_ERR_STORE_NOT_REPLICATED).
 */
export interface AsyncMailboxStore {
  enqueue(user: string, message: StoredMessage): Promise<EnqueueResult>;
  dequeue(user: string): Promise<StoredMessage | null>;
  count(user: string): Promise<number>;
  /** Resolves once the replies already asked for have come and the connection is closed. */
  close(): Promise<void>;
}

/**
 * Remembers each applied batch's reply bytes inside the batch's own transaction, until
 * the acceptor confirms it received them. A shard worker that dies after committing a
 * batch but before its reply arrived is then sent the batch again, and answers it from
 * here instead of applying it twice: no message is stored twice or handed out twice,
 * and no reply is lost. Batches are numbered per link (each acceptor thread's channel
 * to the shard numbers its own from 1), so a reply is kept under its link and seq.
 */
export interface BatchJournal {
  /** The stored reply of an applied batch, or null if it was never applied. */
  replyFor(link: number, seq: number): Buffer | null;
  /** Within batch(): records this batch's reply and forgets the link's replies up to `ackedThrough`. */
  record(link: number, seq: number, reply: Uint8Array, ackedThrough: number): void;
  /** Forgets every reply of a link whose acceptor thread is gone (it will never send again). */
  forget(link: number): void;
}

export interface StoreStats {
  /** Messages stored, all mailboxes together. */
  readonly messages: number;
  /** Bytes the store takes: a database's size on disk, or in memory what counts against its cap. */
  readonly bytes: number;
}

export interface StoreLimits {
  readonly maxMessagesPerUser: number;
  /**
   * Mailboxes with messages a store holds at most: past it, COMPOSE to a new recipient
   * is refused as on a full store. Default: no cap (a shard sets mailboxesForHeap()).
   */
  readonly maxMailboxes?: number;
}
