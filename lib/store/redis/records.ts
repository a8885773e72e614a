import { StoreError } from '../../errors.js';
import type { StoredMessage } from '../store.js';

/**
 * How mailboxes sit in Redis. A mailbox is one list, `<prefix>:{<user>}:inbox`, oldest
 * message first; each element is the sender, one space, then the message's bytes.
 *
 * One key per user, and the user inside a hash tag (`{...}`): Redis Cluster hashes only
 * the tag, so whatever keys a user may get later (an in-flight list, say) share the
 * mailbox's slot and one function call may touch them all. A tag ends at the first `}`,
 * and usernames may hold braces (any of 0x21-0x7E), so `%`, `{` and `}` are written
 * %25, %7B and %7D inside the tag: the key stays one-to-one with the name and readable
 * in redis-cli for ordinary names.
 *
 * The sender needs no length: a username never contains a space (0x20), so the first
 * space ends it and every byte after it is the message, exactly as sent.
 */

const SPACE = 0x20;

/** The key of `user`'s mailbox. */
export function mailboxKey(prefix: string, user: string): Buffer {
  return Buffer.from(`${prefix}:{${escapeTag(user)}}:inbox`, 'latin1');
}

function escapeTag(user: string): string {
  // Most names have none of the three: no new string for them.
  return /[%{}]/.test(user) ? user.replace(/[%{}]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`) : user;
}

/** A list element: `from`, a space, the body. */
export function encodeRecord(message: StoredMessage): Buffer {
  const { from, body } = message;
  const record = Buffer.allocUnsafe(from.length + 1 + body.length);
  const at = record.write(from, 0, 'latin1');
  record[at] = SPACE;
  record.set(body, at + 1);
  return record;
}

/** The message a list element holds; a record not made by encodeRecord() is a StoreError. */
export function decodeRecord(record: Buffer): StoredMessage {
  const space = record.indexOf(SPACE);
  if (space < 1) throw new StoreError('PH_ERR_STORE_BAD_RECORD', `a mailbox holds a record that is not a pigeonhole message (${record.length} bytes)`);
  return { from: record.toString('latin1', 0, space), body: record.subarray(space + 1) };
}
