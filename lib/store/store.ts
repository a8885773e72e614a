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

export type EnqueueResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: 'full' | 'unavailable' };

export const ENQUEUED: EnqueueResult = Object.freeze({ ok: true });
export const MAILBOX_FULL: EnqueueResult = Object.freeze({ ok: false, reason: 'full' });
export const STORE_UNAVAILABLE: EnqueueResult = Object.freeze({ ok: false, reason: 'unavailable' });

export interface MailboxStore {
  /** Appends to `user`'s mailbox unless it already holds the maximum. */
  enqueue(user: string, message: StoredMessage): EnqueueResult;
  /** Removes and returns the oldest message for `user`, or null when there is none. */
  dequeue(user: string): StoredMessage | null;
  count(user: string): number;
  close(): void;
}

export interface StoreLimits {
  readonly maxMessagesPerUser: number;
}
