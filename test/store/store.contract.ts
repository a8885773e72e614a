/**
 * The contract every mailbox backend meets, as in aedes-persistence's abstract.js. A
 * backend's test file runs it in two lines:
 *
 *   storeContract('memory', (limits) => new MemoryStore(limits));
 *
 *   const file = (key: string) => join(dir, `${key}.db`);   // dir: a mkdtemp() of the test
 *   storeContract('sqlite', (limits, key) => new SqliteStore({ file: file(key), ...limits }),
 *     { reopen: (store, limits, key) => (store.close(), new SqliteStore({ file: file(key), ...limits })) });
 *
 * storeContract<S>(name, makeStore, extras?)
 *   name                      prefixes every case title (`sqlite: FIFO order`).
 *   makeStore(limits, key)    a new, *empty* store with these limits, sync or async. Called
 *                             once per case; `key` is unique per case ([0-9a-z-], safe as a
 *                             file name or a Redis key prefix) for backends that need a
 *                             place of their own. The contract closes the store a case ends
 *                             with (t.teardown), pass or fail.
 *   extras.reopen(s, limits, key)
 *                             durable backends only: close `s` and open a new store over the
 *                             same data (same key, same limits). Without it the reopen case
 *                             is not registered at all: a memory store has nothing to keep.
 *   extras.skip               a reason (e.g. 'REDIS_URL not set'): every case is registered
 *                             with test.skip, so the report says what did not run and ava
 *                             still finds tests in the file.
 *
 * The store may answer synchronously (MailboxStore) or with promises (a Redis backend):
 * every call is awaited. Cases run serially, so backends sharing one server or directory
 * do not interleave.
 */
import { randomBytes } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import type { EnqueueResult, StoreLimits, StoredMessage } from '../../lib/store/store.js';

type Awaitable<T> = T | Promise<T>;

/** MailboxStore, or the same calls answered with promises. */
export interface ContractStore {
  /** MailboxStore's unit of work; checked when present. */
  batch?<T>(work: () => T): Awaitable<T>;
  enqueue(user: string, message: StoredMessage): Awaitable<EnqueueResult>;
  dequeue(user: string): Awaitable<StoredMessage | null>;
  count(user: string): Awaitable<number>;
  close(): Awaitable<void>;
}

export interface StoreContractExtras<S extends ContractStore> {
  reopen?: (store: S, limits: StoreLimits, key: string) => Awaitable<S>;
  skip?: string;
}

const LIMITS: StoreLimits = { maxMessagesPerUser: 1024 };

const text = (value: string): Uint8Array => Buffer.from(value, 'utf8');
const bytes = (message: StoredMessage | null): Buffer | null => (message === null ? null : Buffer.from(message.body));

export function storeContract<S extends ContractStore>(
  name: string,
  makeStore: (limits: StoreLimits, key: string) => Awaitable<S>,
  extras: StoreContractExtras<S> = {},
): void {
  /** The store a case works on; `reopen()` swaps it, and teardown closes whichever is current. */
  interface Instance {
    store: S;
    reopen(): Promise<S>;
  }

  const register = extras.skip === undefined ? test.serial : test.skip;
  const title = (what: string): string => `${name}: ${what}${extras.skip === undefined ? '' : ` (skipped: ${extras.skip})`}`;

  let cases = 0;
  function storeCase(what: string, limits: StoreLimits, fn: (t: ExecutionContext, instance: Instance) => Promise<void>): void {
    const key = `${++cases}-${randomBytes(4).toString('hex')}`;
    register(title(what), async (t) => {
      const instance: Instance = {
        store: await makeStore(limits, key),
        async reopen() {
          if (extras.reopen === undefined) throw new Error('no reopen() given');
          // Until reopen() returns, the old store is the one to close if it throws.
          instance.store = await extras.reopen(instance.store, limits, key);
          return instance.store;
        },
      };
      t.teardown(async () => {
        await instance.store.close();
      });
      await fn(t, instance);
    });
  }

  async function enqueueAll(store: S, user: string, from: string, bodies: string[]): Promise<void> {
    for (const body of bodies) {
      const result = await store.enqueue(user, { from, body: text(body) });
      if (!result.ok) throw new Error(`enqueue of ${JSON.stringify(body)} for ${user} failed: ${result.reason}`);
    }
  }

  async function drain(store: S, user: string): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < 10_000; i++) {
      const message = await store.dequeue(user);
      if (message === null) return out;
      out.push(Buffer.from(message.body).toString('utf8'));
    }
    throw new Error(`${user}'s mailbox never ran dry`);
  }

  storeCase('an unknown mailbox is empty: count 0, dequeue null', LIMITS, async (t, { store }) => {
    t.is(await store.count('nobody'), 0);
    t.is(await store.dequeue('nobody'), null);
    t.is(await store.count('nobody'), 0);
  });

  storeCase('enqueue answers { ok: true }', LIMITS, async (t, { store }) => {
    t.deepEqual({ ...(await store.enqueue('bob', { from: 'alice', body: text('hi') })) }, { ok: true });
    t.is(await store.count('bob'), 1);
  });

  storeCase('FIFO order', LIMITS, async (t, { store }) => {
    const bodies = Array.from({ length: 50 }, (_, i) => `message ${i}`);
    await enqueueAll(store, 'bob', 'alice', bodies);
    t.is(await store.count('bob'), 50);
    t.deepEqual(await drain(store, 'bob'), bodies);
  });

  storeCase('FIFO order holds when enqueues and dequeues interleave', LIMITS, async (t, { store }) => {
    const got: string[] = [];
    let sent = 0;
    for (let round = 0; round < 20; round++) {
      await enqueueAll(store, 'bob', 'alice', [`m${sent++}`, `m${sent++}`, `m${sent++}`]);
      const message = await store.dequeue('bob');
      if (message !== null) got.push(Buffer.from(message.body).toString());
    }
    got.push(...(await drain(store, 'bob')));
    t.deepEqual(
      got,
      Array.from({ length: sent }, (_, i) => `m${i}`),
    );
  });

  storeCase('dequeue removes the message it returns', LIMITS, async (t, { store }) => {
    await enqueueAll(store, 'bob', 'alice', ['one', 'two']);
    t.is(bytes(await store.dequeue('bob'))?.toString(), 'one');
    t.is(await store.count('bob'), 1);
    t.is(bytes(await store.dequeue('bob'))?.toString(), 'two');
    t.is(await store.count('bob'), 0);
    t.is(await store.dequeue('bob'), null);
    // An emptied mailbox works like a new one.
    await enqueueAll(store, 'bob', 'carol', ['three']);
    t.is(await store.count('bob'), 1);
    t.is(bytes(await store.dequeue('bob'))?.toString(), 'three');
  });

  storeCase('mailboxes are isolated per user', LIMITS, async (t, { store }) => {
    await enqueueAll(store, 'bob', 'alice', ['to bob 1', 'to bob 2']);
    await enqueueAll(store, 'carol', 'alice', ['to carol']);
    t.is(await store.count('bob'), 2);
    t.is(await store.count('carol'), 1);
    t.is(await store.count('alice'), 0, 'the sender has no mail');
    t.deepEqual(await drain(store, 'carol'), ['to carol']);
    t.is(await store.count('bob'), 2, "draining carol's box leaves bob's alone");
    t.deepEqual(await drain(store, 'bob'), ['to bob 1', 'to bob 2']);
  });

  storeCase('user names are case sensitive and exact', LIMITS, async (t, { store }) => {
    await enqueueAll(store, 'bob', 'alice', ['lower']);
    await enqueueAll(store, 'Bob', 'alice', ['upper']);
    await enqueueAll(store, 'BOB', 'alice', ['shout']);
    t.is(await store.count('bob'), 1);
    t.is(await store.count('Bob'), 1);
    t.is(await store.count('bo'), 0, 'no prefix match');
    t.is(await store.count('bobb'), 0);
    t.deepEqual(await drain(store, 'Bob'), ['upper']);
    t.deepEqual(await drain(store, 'bob'), ['lower']);
    t.deepEqual(await drain(store, 'BOB'), ['shout']);
  });

  storeCase('names with punctuation (all of 0x21-0x7E) are distinct keys', LIMITS, async (t, { store }) => {
    const names = ['a:b', 'a', 'b', 'a*', '%', '_', '"\'`', '\\', '{x}', '~!@#$^&()-=+[];,./<>?|'];
    for (const user of names) await enqueueAll(store, user, 'x', [`for ${user}`]);
    for (const user of names) t.deepEqual(await drain(store, user), [`for ${user}`], user);
  });

  storeCase('names with braces and percent signs stay distinct (a Redis hash tag must not merge them)', LIMITS, async (t, { store }) => {
    const names = ['}', '{', '{}', '}{', '%', '%25', '%7D', '%7B', 'a}b', 'a%7Db', '{a}', 'a'];
    for (const user of names) await enqueueAll(store, user, 'x', [`for ${user}`]);
    for (const user of names) t.is(await store.count(user), 1, user);
    for (const user of names) t.deepEqual(await drain(store, user), [`for ${user}`], user);
  });

  storeCase('a full mailbox answers { ok: false, reason: "full" } and frees a slot after a dequeue', { maxMessagesPerUser: 3 }, async (t, { store }) => {
    await enqueueAll(store, 'bob', 'alice', ['1', '2', '3']);
    t.deepEqual({ ...(await store.enqueue('bob', { from: 'alice', body: text('4') })) }, { ok: false, reason: 'full' });
    t.is(await store.count('bob'), 3);
    // Another user's box is not affected by bob's being full.
    t.true((await store.enqueue('carol', { from: 'alice', body: text('c') })).ok);
    t.is(bytes(await store.dequeue('bob'))?.toString(), '1');
    t.true((await store.enqueue('bob', { from: 'alice', body: text('5') })).ok);
    t.deepEqual({ ...(await store.enqueue('bob', { from: 'alice', body: text('6') })) }, { ok: false, reason: 'full' });
    // The refused messages were not stored.
    t.deepEqual(await drain(store, 'bob'), ['2', '3', '5']);
  });

  storeCase('a cap of one message', { maxMessagesPerUser: 1 }, async (t, { store }) => {
    t.true((await store.enqueue('bob', { from: 'alice', body: text('only') })).ok);
    t.false((await store.enqueue('bob', { from: 'alice', body: text('more') })).ok);
    t.deepEqual(await drain(store, 'bob'), ['only']);
    t.true((await store.enqueue('bob', { from: 'alice', body: text('again') })).ok);
  });

  storeCase('bodies round-trip byte for byte', LIMITS, async (t, { store }) => {
    const random = Buffer.alloc(64 * 1024);
    for (let i = 0; i < random.length; i++) random[i] = (i * 131 + (i >>> 8) * 7) & 0xff;
    const bodies: [string, Buffer][] = [
      ['NUL', Buffer.from([0x00])],
      ['NULs around text', Buffer.from([0x00, 0x61, 0x00, 0x62, 0x00])],
      ['Latin-1 0xE9', Buffer.from([0x63, 0x61, 0x66, 0xe9])],
      ['0xFF', Buffer.from([0xff, 0xfe, 0xff])],
      ['empty', Buffer.alloc(0)],
      ['UTF-8', Buffer.from('héllo ✉ 🐦', 'utf8')],
      ['invalid UTF-8', Buffer.from([0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1])],
      ['CR and every byte value', Buffer.from(Array.from({ length: 256 }, (_, i) => i))],
      ['64 KiB', random],
    ];
    for (const [, body] of bodies) {
      // A copy goes in, so the store cannot hand back the very object it was given.
      t.true((await store.enqueue('bob', { from: 'alice', body: Buffer.from(body) })).ok);
    }
    for (const [label, body] of bodies) {
      const got = bytes(await store.dequeue('bob'));
      t.not(got, null, label);
      t.is(got?.length, body.length, label);
      t.true(got !== null && got.equals(body), label);
    }
  });

  storeCase('the sender is kept with each message', LIMITS, async (t, { store }) => {
    const senders = ['alice', 'Alice', 'bob', 'x'.repeat(256), '!~'];
    for (const from of senders) t.true((await store.enqueue('bob', { from, body: text(`from ${from}`) })).ok);
    for (const from of senders) {
      const message = await store.dequeue('bob');
      t.is(message?.from, from);
      t.is(bytes(message)?.toString(), `from ${from}`);
    }
  });

  storeCase('the stored body does not change when the caller later mutates its buffer', LIMITS, async (t, { store }) => {
    const body = Buffer.from('original');
    t.true((await store.enqueue('bob', { from: 'alice', body })).ok);
    body.fill(0x58);
    // A view into a larger buffer, as a shard passes a slice of its request batch.
    const batch = Buffer.from('....second....');
    t.true((await store.enqueue('bob', { from: 'alice', body: batch.subarray(4, 10) })).ok);
    batch.fill(0x00);
    t.deepEqual(await drain(store, 'bob'), ['original', 'second']);
  });

  storeCase('batch() returns what its work returns and keeps its writes, in order', LIMITS, async (t, { store }) => {
    if (store.batch === undefined) {
      t.pass('this backend has no batch()');
      return;
    }
    const result = await store.batch(() => {
      const first = store.enqueue('bob', { from: 'alice', body: text('in batch 1') });
      const second = store.enqueue('bob', { from: 'alice', body: text('in batch 2') });
      return [first, second];
    });
    t.is(result.length, 2);
    t.is(await store.count('bob'), 2);
    await enqueueAll(store, 'bob', 'alice', ['after']);
    t.deepEqual(await drain(store, 'bob'), ['in batch 1', 'in batch 2', 'after']);
  });

  storeCase('many users, many messages', LIMITS, async (t, { store }) => {
    const users = Array.from({ length: 40 }, (_, i) => `user${i}`);
    for (let round = 0; round < 5; round++) {
      for (const user of users) await enqueueAll(store, user, `from${round}`, [`${user}#${round}`]);
    }
    for (const user of users) t.is(await store.count(user), 5);
    for (const user of users) t.deepEqual(await drain(store, user), [0, 1, 2, 3, 4].map((round) => `${user}#${round}`));
  });

  if (extras.reopen !== undefined) {
    storeCase('reopen keeps data, order and counts', { maxMessagesPerUser: 4 }, async (t, instance) => {
      let store = instance.store;
      await enqueueAll(store, 'bob', 'alice', ['b1', 'b2', 'b3']);
      await enqueueAll(store, 'carol', 'dave', ['c1', 'c2', 'c3', 'c4']);
      t.true((await store.enqueue('erin', { from: 'alice', body: Buffer.from([0x00, 0xe9, 0xff, 0x0d]) })).ok);
      t.is(bytes(await store.dequeue('bob'))?.toString(), 'b1');

      store = await instance.reopen();
      t.is(await store.count('bob'), 2);
      t.is(await store.count('carol'), 4);
      t.is(await store.count('erin'), 1);
      t.is(await store.count('nobody'), 0);
      // A full mailbox is still full, and the cap still applies to a partly filled one.
      t.false((await store.enqueue('carol', { from: 'x', body: text('c5') })).ok);
      await enqueueAll(store, 'bob', 'zed', ['b4', 'b5']);
      t.false((await store.enqueue('bob', { from: 'x', body: text('b6') })).ok);
      const first = await store.dequeue('bob');
      t.is(first?.from, 'alice');
      t.is(bytes(first)?.toString(), 'b2');

      store = await instance.reopen();
      t.deepEqual(await drain(store, 'bob'), ['b3', 'b4', 'b5']);
      t.deepEqual(await drain(store, 'carol'), ['c1', 'c2', 'c3', 'c4']);
      const binary = await store.dequeue('erin');
      t.is(binary?.from, 'alice');
      t.true(bytes(binary)?.equals(Buffer.from([0x00, 0xe9, 0xff, 0x0d])));

      store = await instance.reopen();
      t.is(await store.count('bob'), 0, 'dequeued messages stay gone');
      t.is(await store.count('carol'), 0);
      t.is(await store.dequeue('erin'), null);
    });
  }
}
