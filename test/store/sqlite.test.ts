import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { seqAfter } from '../../lib/shards/messages.js';
import { SqliteStore } from '../../lib/store/sqlite.js';
import { storeContract } from './store.contract.js';

const dir = mkdtempSync(join(tmpdir(), 'pigeonhole-sqlite-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
const file = (key: string): string => join(dir, `${key}.db`);

storeContract('sqlite', (limits, key) => new SqliteStore({ file: file(key), ...limits }), {
  reopen: (store, limits, key) => (store.close(), new SqliteStore({ file: file(key), ...limits })),
});

test('sqlite: a batch that cannot commit leaves nothing behind, counts included, and the store keeps working', (t) => {
  const store = new SqliteStore({ file: file('rollback'), maxMessagesPerUser: 100 });
  t.teardown(() => store.close());
  store.batch(() => {
    store.enqueue('alice', { from: 'bob', body: Buffer.from('kept 1') });
    store.enqueue('alice', { from: 'bob', body: Buffer.from('kept 2') });
  });
  // Anything that breaks a batch midway (an I/O error, a disk that is really full) rolls
  // all of it back.
  const error = t.throws(() =>
    store.batch(() => {
      store.enqueue('alice', { from: 'carol', body: Buffer.from('lost') });
      store.enqueue('dave', { from: 'carol', body: Buffer.from('lost') });
      store.dequeue('alice');
      throw new Error('disk on fire');
    }),
  );
  t.is((error as { code?: string }).code, 'PH_ERR_STORE_WRITE_FAILED');
  t.is(store.count('alice'), 2);
  t.is(store.count('dave'), 0);
  const kept = store.batch(() => [store.dequeue('alice'), store.dequeue('alice'), store.dequeue('alice')]);
  t.deepEqual(
    kept.map((message) => message && Buffer.from(message.body).toString()),
    ['kept 1', 'kept 2', null],
  );
  t.is(store.batch(() => store.enqueue('dave', { from: 'carol', body: Buffer.from('after') })).ok, true);
});

test('sqlite: past maxBytes a COMPOSE fails alone, as on a full disk; the rest of its batch stands', (t) => {
  const store = new SqliteStore({ file: file('full'), maxMessagesPerUser: 1_000_000, maxBytes: 64 * 1024 });
  t.teardown(() => store.close());
  const big = Buffer.alloc(4000, 0x61);
  const results = store.batch(() => {
    const out = [store.enqueue('alice', { from: 'bob', body: Buffer.from('small first') })];
    for (let i = 0; i < 40; i++) out.push(store.enqueue('alice', { from: 'bob', body: big }));
    out.push(store.enqueue('carol', { from: 'bob', body: Buffer.from('x') }));
    return out;
  });
  const refused = results.filter((result) => !result.ok);
  t.true(refused.length > 0, 'the cap was reached');
  t.true(results.filter((result) => result.ok).length > 1, 'what fitted was stored');
  for (const result of refused) t.deepEqual(result, { ok: false, reason: 'unavailable' });
  t.is(store.count('alice'), results.slice(0, 41).filter((result) => result.ok).length);
  const first = store.batch(() => store.dequeue('alice'));
  t.is(first && Buffer.from(first.body).toString(), 'small first');
});

test('sqlite: the journal answers an applied batch again, and forgets acknowledged ones', (t) => {
  const store = new SqliteStore({ file: file('journal'), maxMessagesPerUser: 10, epoch: 7 });
  t.teardown(() => store.close());
  const journal = store.journal;
  store.batch(() => journal.record(0, 1, Buffer.from('one'), 0));
  store.batch(() => journal.record(0, 2, Buffer.from('two'), 1));
  t.is(journal.replyFor(0, 1), null, 'acknowledged through 1: forgotten');
  t.is(journal.replyFor(0, 2)?.toString(), 'two');
  t.is(journal.replyFor(0, 3), null);
});

test('sqlite: past maxMailboxes a new recipient is refused as on a full store; a mailbox read empty makes room', (t) => {
  const store = new SqliteStore({ file: file('max-mailboxes'), maxMessagesPerUser: 10, maxMailboxes: 2 });
  t.teardown(() => store.close());
  const message = { from: 'zed', body: Buffer.from('hi') };
  store.batch(() => {
    t.true(store.enqueue('alice', message).ok);
    t.true(store.enqueue('bob', message).ok);
    t.deepEqual(store.enqueue('carol', message), { ok: false, reason: 'unavailable' });
    t.true(store.enqueue('alice', message).ok, 'a mailbox that exists takes more');
  });
  store.batch(() => t.is(store.dequeue('bob')?.from, 'zed'));
  store.batch(() => t.true(store.enqueue('carol', message).ok));
  t.is(store.count('carol'), 1);
});

test('sqlite: batch numbers that wrap after 2^32 - 1 (seqAfter) keep the journal right, and apart from other links', (t) => {
  const store = new SqliteStore({ file: file('journal-wrap'), maxMessagesPerUser: 10, epoch: 7 });
  t.teardown(() => store.close());
  const journal = store.journal;
  const last = 2 ** 32 - 1;
  t.is(seqAfter(last - 1), last);
  t.is(seqAfter(last), 1);
  store.batch(() => journal.record(2, 1, Buffer.from('link 2 one'), 0));
  store.batch(() => journal.record(1, last - 1, Buffer.from('before last'), last - 2));
  store.batch(() => journal.record(1, last, Buffer.from('last'), last - 1));
  t.is(journal.replyFor(1, last)?.toString(), 'last');
  // One batch in flight: the first after the wrap acknowledges the last before it.
  store.batch(() => journal.record(1, seqAfter(last), Buffer.from('one again'), last));
  t.is(journal.replyFor(1, last), null);
  t.is(journal.replyFor(1, last - 1), null);
  t.is(journal.replyFor(1, 1)?.toString(), 'one again');
  store.batch(() => journal.record(1, 2, Buffer.from('two'), 1));
  t.is(journal.replyFor(1, 1), null);
  t.is(journal.replyFor(1, 2)?.toString(), 'two');
  t.is(journal.replyFor(2, 1)?.toString(), 'link 2 one', "another link's replies stay");
});

test('sqlite: each link (acceptor thread) has its own batch numbers in the journal', (t) => {
  const store = new SqliteStore({ file: file('journal-links'), maxMessagesPerUser: 10, epoch: 7 });
  t.teardown(() => store.close());
  const journal = store.journal;
  store.batch(() => journal.record(0, 1, Buffer.from('main one'), 0));
  store.batch(() => journal.record(3, 1, Buffer.from('link 3 one'), 0));
  store.batch(() => journal.record(3, 2, Buffer.from('link 3 two'), 0));
  t.is(journal.replyFor(0, 1)?.toString(), 'main one', 'the same seq on another link is another batch');
  t.is(journal.replyFor(3, 1)?.toString(), 'link 3 one');
  // Link 0 acknowledges through 1: link 3's batches stay.
  store.batch(() => journal.record(0, 2, Buffer.from('main two'), 1));
  t.is(journal.replyFor(0, 1), null);
  t.is(journal.replyFor(3, 1)?.toString(), 'link 3 one');
  // Link 3 acknowledges through 1: its batch 2 and link 0's stay.
  store.batch(() => journal.record(3, 3, Buffer.from('link 3 three'), 1));
  t.is(journal.replyFor(3, 1), null);
  t.is(journal.replyFor(3, 2)?.toString(), 'link 3 two');
  t.is(journal.replyFor(0, 2)?.toString(), 'main two');
  t.is(journal.replyFor(1, 2), null);
  // Link 3's thread is gone: all its replies go, and only its.
  journal.forget(3);
  t.is(journal.replyFor(3, 2), null);
  t.is(journal.replyFor(3, 3), null);
  t.is(journal.replyFor(0, 2)?.toString(), 'main two');
});

test('sqlite: a new server run (epoch) drops the journal of the last one, not the mailboxes', (t) => {
  const first = new SqliteStore({ file: file('epoch'), maxMessagesPerUser: 10, epoch: 1 });
  first.batch(() => {
    first.enqueue('carol', { from: 'dave', body: Buffer.from('hi') });
    first.journal.record(0, 5, Buffer.from('reply'), 0);
  });
  first.close();
  const second = new SqliteStore({ file: file('epoch'), maxMessagesPerUser: 10, epoch: 2 });
  t.teardown(() => second.close());
  t.is(second.journal.replyFor(0, 5), null);
  t.is(second.count('carol'), 1);
});

test('sqlite: a file that cannot be opened is a StoreError with a code', (t) => {
  const error = t.throws(() => new SqliteStore({ file: join(dir, 'no-such-dir', 'x.db'), maxMessagesPerUser: 1 }));
  t.is((error as { code?: string }).code, 'PH_ERR_STORE_OPEN_FAILED');
  t.regex(error?.message ?? '', /no-such-dir/);
});
