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
import type { AsyncMailboxStore, EnqueueResult, StoredMessage } from '../store/store.js';
import { ByteWriter } from '../util/bytes.js';
import { OP_COMPOSE, OP_COUNT, OP_READ, RequestReader, beginReply, endReply, writeAborted, writeReply } from './messages.js';
import { NameCache } from './name-cache.js';

const FAILURES_LOG_MS = 10_000;

// No true answer: the connection that asked is dropped.
const ABORT = Symbol('abort');

/** One command's answer: fixed reply bytes, a count, a message, or none. */
type Answer = Buffer | number | StoredMessage | typeof ABORT;

/**
 * A shard's logic over a store that answers with promises (Redis): the same request
 * batch in, the same reply batch out, as ShardCore does for synchronous stores.
 *
 * Every command of the batch is issued before any answer is awaited, so they leave as
 * one pipeline per Redis node; the answers are written in request order once all have
 * come. The router keeps one batch in flight per shard, and the host runs batches one
 * after another, so batches stay in order too. There is no journal: the store is shared
 * by every node and shard and outlives them, so nothing is ever replayed.
 *
 * Failures never produce a wrong answer: a COMPOSE the store certainly did not apply is
 * MESSAGE FAILED; one whose outcome is unknown, and a READ or LOGIN that got no answer,
 * drop their connection (see AsyncMailboxStore).
 */
export class AsyncShardCore {
  readonly #store: AsyncMailboxStore;
  readonly #logger: Logger;
  readonly #replies = new ByteWriter(16 * 1024);
  readonly #names = new NameCache();
  // Reported at most once per FAILURES_LOG_MS, so an outage does not flood the log.
  #refused = 0;
  #dropped = 0;
  #lastDropCode = '';
  #reportedAt = -Infinity;

  constructor(store: AsyncMailboxStore, logger: Logger) {
    this.#store = store;
    this.#logger = logger;
  }

  async handle(batch: Uint8Array): Promise<Buffer> {
    const bytes = Buffer.from(batch.buffer, batch.byteOffset, batch.byteLength);
    const store = this.#store;
    const names = this.#names;
    const record = new RequestReader(bytes);
    const answers: Promise<Answer>[] = [];
    while (record.next()) {
      const name = names.get(bytes, record.nameStart, record.nameEnd);
      switch (record.op) {
        case OP_COUNT:
          answers.push(store.count(name).catch(this.#noAnswer));
          break;
        case OP_COMPOSE: {
          const from = names.get(bytes, record.fromStart, record.fromEnd);
          answers.push(store.enqueue(name, { from, body: bytes.subarray(record.bodyStart, record.bodyEnd) }).then(this.#composed, this.#noAnswer));
          break;
        }
        case OP_READ:
          answers.push(store.dequeue(name).then((message) => message ?? REPLY_READ_ERROR, this.#noAnswer));
          break;
      }
    }
    const settled = await Promise.all(answers);
    const out = this.#replies;
    for (const answer of settled) {
      if (answer === ABORT) {
        writeAborted(out);
      } else if (typeof answer === 'number') {
        const start = beginReply(out, MAX_COUNT_REPLY_LENGTH);
        endReply(out, start, writeCountReply(out.reserve(0), start, answer));
      } else if (answer instanceof Uint8Array) {
        writeReply(out, answer);
      } else {
        const start = beginReply(out, messageReplyLength(answer.from.length, answer.body.length));
        endReply(out, start, writeMessageReply(out.reserve(0), start, answer.from, answer.body));
      }
    }
    if (this.#refused + this.#dropped > 0) this.#reportFailures();
    return out.take();
  }

  close(): Promise<void> {
    return this.#store.close();
  }

  readonly #composed = (result: EnqueueResult): Answer => {
    if (result.ok) return REPLY_MESSAGE_SENT;
    if (result.reason === 'unavailable') this.#refused++;
    return REPLY_MESSAGE_FAILED;
  };

  readonly #noAnswer = (err: unknown): Answer => {
    if (!(err instanceof StoreError)) throw err; // a bug, not a store failure
    this.#dropped++;
    this.#lastDropCode = err.code;
    return ABORT;
  };

  #reportFailures(): void {
    const now = performance.now();
    if (now - this.#reportedAt < FAILURES_LOG_MS) return;
    const refused = this.#refused;
    const dropped = this.#dropped;
    this.#logger.error(
      { code: dropped > 0 ? this.#lastDropCode : 'PH_ERR_STORE_UNAVAILABLE', refused, dropped },
      `the mailbox store failed: ${refused} COMPOSE(s) answered MESSAGE FAILED (not stored), ${dropped} command(s) dropped their connection (no true answer)`,
    );
    this.#refused = 0;
    this.#dropped = 0;
    this.#reportedAt = now;
  }
}
