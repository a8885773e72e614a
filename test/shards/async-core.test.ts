// AsyncShardCore: a request batch against a store that answers with promises. The store
// here is a small asynchronous one over MemoryStore whose answers come back in an order
// the test chooses; the Redis store itself runs in test/store and test/durability.
import test from 'ava';
import { StoreError } from '../../lib/errors.js';
import { AsyncShardCore } from '../../lib/shards/async-core.js';
import { ReplyReader, beginBatch, sealBatch, writeCompose, writeCount, writeRead } from '../../lib/shards/messages.js';
import { MemoryStore } from '../../lib/store/memory.js';
import { type AsyncMailboxStore, type EnqueueResult, STORE_UNAVAILABLE, type StoredMessage } from '../../lib/store/store.js';
import { ByteWriter } from '../../lib/util/bytes.js';

const latin1 = (text: string): Buffer => Buffer.from(text, 'latin1');

/**
 * MemoryStore behind promises. Every call is applied when made (as Redis applies a
 * pipeline in order) but answered only when release() says, last call first: the core
 * must still write replies in request order. `fail` turns chosen calls into failures.
 */
class DelayedStore implements AsyncMailboxStore {
  readonly inner = new MemoryStore({ maxMessagesPerUser: 2 });
  readonly #pending: (() => void)[] = [];
  fail: (call: number) => 'unavailable' | StoreError | Error | null = () => null;
  #calls = 0;

  enqueue(user: string, message: StoredMessage): Promise<EnqueueResult> {
    return this.#answer(() => this.inner.enqueue(user, message), (failure) => (failure === 'unavailable' ? STORE_UNAVAILABLE : null));
  }

  dequeue(user: string): Promise<StoredMessage | null> {
    return this.#answer(() => this.inner.dequeue(user), () => null);
  }

  count(user: string): Promise<number> {
    return this.#answer(() => this.inner.count(user), () => null);
  }

  async close(): Promise<void> {}

  /** Answers every call made so far, newest first. */
  release(): void {
    for (const answer of this.#pending.splice(0).reverse()) answer();
  }

  #answer<T>(apply: () => T, asValue: (failure: 'unavailable') => T | null): Promise<T> {
    const failure = this.fail(this.#calls++);
    const value = failure === null ? apply() : null;
    return new Promise<T>((resolve, reject) => {
      this.#pending.push(() => {
        if (failure === null) resolve(value as T);
        else if (failure === 'unavailable') resolve(asValue(failure) as T);
        else reject(failure);
      });
    });
  }
}

function requestBatch(write: (writer: ByteWriter) => void): Buffer {
  const writer = new ByteWriter(64);
  beginBatch(writer);
  write(writer);
  const bytes = writer.take();
  sealBatch(bytes, 1, 0);
  return bytes;
}

function replies(batch: Buffer): (string | 'ABORTED')[] {
  const out: (string | 'ABORTED')[] = [];
  const reader = new ReplyReader(batch);
  while (reader.next()) out.push(reader.aborted ? 'ABORTED' : batch.toString('latin1', reader.start, reader.end));
  return out;
}

const composeTo = (to: string, from: string, body: string) => (writer: ByteWriter) => {
  const bytes = latin1(body);
  writeCompose(writer, latin1(to), 0, to.length, latin1(from), bytes, 0, bytes.length);
};

test('answers are written in request order though the store answers last first', async (t) => {
  const store = new DelayedStore();
  const core = new AsyncShardCore(store);
  const reply = core.handle(
    requestBatch((w) => {
      writeCount(w, latin1('bob'));
      composeTo('bob', 'alice', 'one')(w);
      composeTo('bob', 'carol', 'two')(w);
      composeTo('bob', 'dave', 'three')(w); // the cap is 2
      writeCount(w, latin1('bob'));
      writeRead(w, latin1('bob'));
      writeRead(w, latin1('nobody'));
    }),
  );
  store.release();
  t.deepEqual(replies(await reply), ['0\n', 'MESSAGE SENT\n', 'MESSAGE SENT\n', 'MESSAGE FAILED\n', '2\n', 'alice\none\n', 'READ ERROR\n']);
});

test('a write the store did not take is MESSAGE FAILED; a call with no true answer is aborted', async (t) => {
  const store = new DelayedStore();
  const core = new AsyncShardCore(store);
  // Calls 0 and 1: COMPOSEs the store refused / lost; 2: a READ that failed; 3: a LOGIN that failed.
  store.fail = (call) =>
    call === 0 ? 'unavailable' : call === 1 ? new StoreError('PH_ERR_STORE_OUTCOME_UNKNOWN') : call === 2 ? new StoreError('PH_ERR_STORE_UNAVAILABLE') : call === 3 ? new StoreError('PH_ERR_STORE_UNAVAILABLE') : null;
  const reply = core.handle(
    requestBatch((w) => {
      composeTo('bob', 'alice', 'refused')(w);
      composeTo('bob', 'alice', 'unknown')(w);
      writeRead(w, latin1('bob'));
      writeCount(w, latin1('bob'));
      composeTo('bob', 'alice', 'kept')(w);
    }),
  );
  store.release();
  t.deepEqual(replies(await reply), ['MESSAGE FAILED\n', 'ABORTED', 'ABORTED', 'ABORTED', 'MESSAGE SENT\n']);
  t.is(store.inner.count('bob'), 1, 'only the last COMPOSE reached the store');
});

test('a failure that is not a StoreError is a bug: the batch rejects instead of answering', async (t) => {
  const store = new DelayedStore();
  const core = new AsyncShardCore(store);
  store.fail = () => new TypeError('bug');
  const reply = core.handle(requestBatch((w) => writeCount(w, latin1('bob'))));
  store.release();
  await t.throwsAsync(reply, { instanceOf: TypeError });
});
