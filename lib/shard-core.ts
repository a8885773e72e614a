import { ByteReader, ByteWriter } from './byte-writer.js';
import { StoreError } from './errors.js';
import type { Logger } from './logger.js';
import { NameCache } from './name-cache.js';
import {
  MAX_COUNT_REPLY_LENGTH,
  REPLY_MESSAGE_FAILED,
  REPLY_MESSAGE_SENT,
  REPLY_READ_ERROR,
  messageReplyLength,
  writeCountReply,
  writeMessageReply,
} from './protocol/encode.js';
import { ABORTED, BATCH_HEADER_BYTES, FLAG_RESENT, OP_COMPOSE, OP_COUNT, OP_READ } from './shard-messages.js';
import type { MailboxStore } from './store/store.js';

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
    const seq = bytes.readUInt32LE(0);
    const acked = bytes.readUInt32LE(4);
    const resent = (bytes.readUInt32LE(8) & FLAG_RESENT) !== 0;
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
      this.#logger.error(`${err.message}; ${err.code}: the batch was rolled back; trying it again without its COMPOSEs`);
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
      this.#logger.error(`${err.message}; ${err.code}: answering the batch's COMPOSEs MESSAGE FAILED and dropping its READs`);
      this.#apply(new ByteReader(bytes), 'failed');
      return this.#replies.take();
    }
  }

  /** Applies the batch in one store transaction, journaling its reply; returns the reply. */
  #commit(bytes: Buffer, seq: number, acked: number, mode: ApplyMode): Buffer {
    const journal = this.#store.journal;
    const reply = this.#store.batch(() => {
      this.#apply(new ByteReader(bytes), mode);
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

  #apply(reader: ByteReader, mode: ApplyMode): void {
    const failed = mode === 'failed';
    const refuseWrites = mode !== 'apply';
    const store = this.#store;
    const out = this.#replies;
    reader.offset = BATCH_HEADER_BYTES;
    while (!reader.done) {
      const op = reader.u8();
      switch (op) {
        case OP_COUNT: {
          const count = store.count(this.#name(reader));
          const at = out.length;
          const buffer = out.reserve(4 + MAX_COUNT_REPLY_LENGTH);
          const end = writeCountReply(buffer, at + 4, count);
          buffer.writeUInt32LE(end - at - 4, at);
          out.advance(end - at);
          break;
        }
        case OP_COMPOSE: {
          const to = this.#name(reader);
          const from = this.#name(reader);
          const body = reader.bytes(reader.u32());
          let ok = false;
          if (!refuseWrites) {
            const result = store.enqueue(to, { from, body });
            ok = result.ok;
            if (!result.ok && result.reason === 'unavailable') this.#refused++;
          }
          this.#reply(ok ? REPLY_MESSAGE_SENT : REPLY_MESSAGE_FAILED);
          break;
        }
        case OP_READ: {
          const user = this.#name(reader);
          if (failed) {
            out.u32(ABORTED);
            break;
          }
          const message = store.dequeue(user);
          if (message === null) {
            this.#reply(REPLY_READ_ERROR);
          } else {
            const length = messageReplyLength(message.from.length, message.body.length);
            const at = out.length;
            const buffer = out.reserve(4 + length);
            buffer.writeUInt32LE(length, at);
            writeMessageReply(buffer, at + 4, message.from, message.body);
            out.advance(4 + length);
          }
          break;
        }
        default:
          throw new Error(`unknown shard op ${op}`);
      }
    }
  }

  #reportRefusals(): void {
    const now = performance.now();
    if (now - this.#refusedLoggedAt < REFUSALS_LOG_MS) return;
    this.#logger.error(`PH_ERR_STORE_WRITE_FAILED: the mailbox store is full; ${this.#refused} COMPOSE(s) answered MESSAGE FAILED`);
    this.#refused = 0;
    this.#refusedLoggedAt = now;
  }

  #name(reader: ByteReader): string {
    const length = reader.u16();
    const start = reader.offset;
    reader.offset += length;
    return this.#names.get(reader.buffer, start, start + length);
  }

  #reply(bytes: Buffer): void {
    this.#replies.u32(bytes.length);
    this.#replies.bytes(bytes);
  }
}
