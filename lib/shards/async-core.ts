import { StoreError } from '../errors.js';
import { REPLY_MESSAGE_FAILED, REPLY_MESSAGE_SENT, REPLY_READ_ERROR } from '../protocol/encode.js';
import type { AsyncMailboxStore, EnqueueResult, StoredMessage } from '../store/store.js';
import { OP_COMPOSE, OP_COUNT, OP_READ, ReplyWriter, RequestReader } from './messages.js';
import { NameCache } from './name-cache.js';

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
 * come. The router keeps one batch in flight per shard (its next batch grows meanwhile,
 * into a bigger pipeline), and the host runs batches one after another, so batches stay
 * in order too. There is no journal: the store is shared
 * by every node and shard and outlives them, so nothing is ever replayed.
 *
 * Failures never produce a wrong answer: a COMPOSE the store certainly did not apply is
 * MESSAGE FAILED; one whose outcome is unknown, and a READ or LOGIN that got no answer,
 * drop their connection (see AsyncMailboxStore).
 */
export class AsyncShardCore {
  readonly #store: AsyncMailboxStore;
  readonly #replies = new ReplyWriter();
  readonly #names = new NameCache();

  // The store reports its own failures: it knows their reasons.
  constructor(store: AsyncMailboxStore) {
    this.#store = store;
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
          answers.push(store.dequeue(name).then(this.#read, this.#noAnswer));
          break;
      }
    }
    const settled = await Promise.all(answers);
    const out = this.#replies;
    for (const answer of settled) {
      if (answer === ABORT) {
        out.aborted();
      } else if (typeof answer === 'number') {
        out.countReply(answer);
      } else if (answer instanceof Uint8Array) {
        out.reply(answer);
      } else {
        out.messageReply(answer.from, answer.body);
      }
    }
    return out.take();
  }

  close(): Promise<void> {
    return this.#store.close();
  }

  readonly #composed = (result: EnqueueResult): Answer => (result.ok ? REPLY_MESSAGE_SENT : REPLY_MESSAGE_FAILED);

  readonly #read = (message: StoredMessage | null): Answer => message ?? REPLY_READ_ERROR;

  readonly #noAnswer = (err: unknown): Answer => {
    if (!(err instanceof StoreError)) throw err; // a bug, not a store failure
    return ABORT;
  };
}
