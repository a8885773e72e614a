import { ByteReader, ByteWriter } from './byte-writer.js';
import {
  MAX_COUNT_REPLY_LENGTH,
  REPLY_MESSAGE_FAILED,
  REPLY_MESSAGE_SENT,
  REPLY_READ_ERROR,
  messageReplyLength,
  writeCountReply,
  writeMessageReply,
} from './protocol/encode.js';
import { OP_COMPOSE, OP_COUNT, OP_READ } from './shard-messages.js';
import type { MailboxStore } from './store/store.js';

/**
 * A mailbox shard's whole logic: apply a request batch to the store, in order, and
 * answer with the reply batch. It runs the same whether the shard lives in a worker
 * thread or inline in the acceptor's thread; it knows nothing of sockets or ports.
 */
export class ShardCore {
  readonly #store: MailboxStore;
  readonly #replies = new ByteWriter(16 * 1024);

  constructor(store: MailboxStore) {
    this.#store = store;
  }

  handle(batch: Uint8Array): Buffer {
    const reader = new ByteReader(Buffer.from(batch.buffer, batch.byteOffset, batch.byteLength));
    const out = this.#replies;
    while (!reader.done) {
      const op = reader.u8();
      switch (op) {
        case OP_COUNT: {
          const count = this.#store.count(reader.shortLatin1());
          const at = out.length;
          const buffer = out.reserve(4 + MAX_COUNT_REPLY_LENGTH);
          const end = writeCountReply(buffer, at + 4, count);
          buffer.writeUInt32LE(end - at - 4, at);
          out.advance(end - at);
          break;
        }
        case OP_COMPOSE: {
          const to = reader.shortLatin1();
          const from = reader.shortLatin1();
          const body = reader.bytes(reader.u32());
          const result = this.#store.enqueue(to, { from, body });
          this.#reply(result.ok ? REPLY_MESSAGE_SENT : REPLY_MESSAGE_FAILED);
          break;
        }
        case OP_READ: {
          const message = this.#store.dequeue(reader.shortLatin1());
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
    return out.take();
  }

  close(): void {
    this.#store.close();
  }

  #reply(bytes: Buffer): void {
    this.#replies.u32(bytes.length);
    this.#replies.bytes(bytes);
  }
}
