import { StoreError } from '../errors.js';
import type { Logger } from '../logger.js';
import {
  MAX_COUNT_REPLY_LENGTH,
  REPLY_MESSAGE_FAILED,
  REPLY_MESSAGE_SENT,
  REPLY_READ_ERROR,
  messageReplyLength,
  writeCountReply,
  writeMessageReply,
} from '../protocol/encode.js';
import type { MailboxStore, StoreStats } from '../store/store.js';
import { ByteWriter } from '../util/bytes.js';
import { OP_COMPOSE, OP_COUNT, OP_READ, RequestReader, beginReply, endReply, readBatchHeader, writeAborted, writeReply } from './messages.js';
import { NameCache } from './name-cache.js';

const REFUSALS_LOG_MS = 10_000;

/**
 * How a batch is applied: 'apply' as asked; 'refuse-writes' with every COMPOSE answered
 * MESSAGE FAILED unapplied (a store that could not commit the batch); 'failed' touching
 * nothing, READs aborted (a store that could not commit even that).
 */
type ApplyMode = 'apply' | 'refuse-writes' | 'failed';

/**
 * A mailbox shard's whole logic: apply a request batch to the store, in order, as one
 * unit, and answer with the reply batch. It runs the same whether the shard lives in a
 * worker thread or inline in the acceptor's thread; it knows nothing of sockets or ports.
 */
export class ShardCore {
  readonly #store: MailboxStore;
  readonly #logger: Logger;
  readonly #replies = new ByteWriter(16 * 1024);
  readonly #names = new NameCache();
  // COMPOSEs the store refused for want of room, not yet reported; reported at most once
  // per REFUSALS_LOG_MS so a full disk does not flood the log.
  #refused = 0;
  #refusedLoggedAt = -Infinity;

  constructor(store: MailboxStore, logger: Logger) {
    this.#store = store;
    this.#logger = logger;
  }

  handle(batch: Uint8Array): Buffer {
    const bytes = Buffer.from(batch.buffer, batch.byteOffset, batch.byteLength);
    const { seq, acked, resent } = readBatchHeader(bytes);
    // A batch sent again after its shard was restarted: if it was committed before the
    // crash, answer exactly as then instead of applying it twice.
    const earlier = resent ? (this.#store.journal?.replyFor(seq) ?? null) : null;
    if (earlier !== null) {
      // Its own ArrayBuffer: the reply is transferred, and a pooled Buffer's is shared.
      const copy = Buffer.allocUnsafeSlow(earlier.length);
      earlier.copy(copy);
      return copy;
    }
    const refusedBefore = this.#refused;
    try {
      return this.#commit(bytes, seq, acked, 'apply');
    } catch (err) {
      this.#replies.take();
      this.#refused = refusedBefore;
      if (!(err instanceof StoreError)) throw err; // a bug, not a store failure
      this.#logger.error({ code: err.code }, `${err.message}; the batch was rolled back; trying it again without its COMPOSEs`);
    }
    try {
      // The batch could not commit (a disk that is really full, an I/O error). Its READs
      // free room and must not be lost with its COMPOSEs: commit it once more with every
      // COMPOSE refused.
      return this.#commit(bytes, seq, acked, 'refuse-writes');
    } catch (err) {
      this.#replies.take();
      if (!(err instanceof StoreError)) throw err;
      // Still nothing took effect. Say so without a wrong answer: COMPOSE fails, READ
      // drops its connection (its message is still stored), LOGIN counts as stored.
      this.#logger.error({ code: err.code }, `${err.message}; answering the batch's COMPOSEs MESSAGE FAILED and dropping its READs`);
      this.#apply(bytes, 'failed');
      return this.#replies.take();
    }
  }

  /** Applies the batch in one store transaction, journaling its reply; returns the reply. */
  #commit(bytes: Buffer, seq: number, acked: number, mode: ApplyMode): Buffer {
    const journal = this.#store.journal;
    const reply = this.#store.batch(() => {
      this.#apply(bytes, mode);
      const reply = this.#replies.take();
      journal?.record(seq, reply, acked);
      return reply;
    });
    if (this.#refused > 0) this.#reportRefusals();
    return reply;
  }

  close(): void {
    this.#store.close();
  }

  /** What the store holds, if it can tell. */
  stats(): StoreStats | null {
    return this.#store.stats?.() ?? null;
  }

  #apply(batch: Buffer, mode: ApplyMode): void {
    const failed = mode === 'failed';
    const refuseWrites = mode !== 'apply';
    const store = this.#store;
    const names = this.#names;
    const out = this.#replies;
    const record = new RequestReader(batch);
    while (record.next()) {
      const name = names.get(batch, record.nameStart, record.nameEnd);
      switch (record.op) {
        case OP_COUNT: {
          const start = beginReply(out, MAX_COUNT_REPLY_LENGTH);
          endReply(out, start, writeCountReply(out.reserve(0), start, store.count(name)));
          break;
        }
        case OP_COMPOSE: {
          let ok = false;
          if (!refuseWrites) {
            const from = names.get(batch, record.fromStart, record.fromEnd);
            const result = store.enqueue(name, { from, body: batch.subarray(record.bodyStart, record.bodyEnd) });
            ok = result.ok;
            if (!result.ok && result.reason === 'unavailable') this.#refused++;
          }
          writeReply(out, ok ? REPLY_MESSAGE_SENT : REPLY_MESSAGE_FAILED);
          break;
        }
        case OP_READ: {
          if (failed) {
            writeAborted(out);
            break;
          }
          const message = store.dequeue(name);
          if (message === null) {
            writeReply(out, REPLY_READ_ERROR);
          } else {
            const start = beginReply(out, messageReplyLength(message.from.length, message.body.length));
            endReply(out, start, writeMessageReply(out.reserve(0), start, message.from, message.body));
          }
          break;
        }
      }
    }
  }

  #reportRefusals(): void {
    const now = performance.now();
    if (now - this.#refusedLoggedAt < REFUSALS_LOG_MS) return;
    this.#logger.error({ code: 'PH_ERR_STORE_WRITE_FAILED', refused: this.#refused }, `the mailbox store is full; ${this.#refused} COMPOSE(s) answered MESSAGE FAILED`);
    this.#refused = 0;
    this.#refusedLoggedAt = now;
  }
}
