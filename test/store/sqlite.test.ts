import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { SqliteStore } from '../../lib/store/sqlite.js';
import { storeContract } from './store.contract.js';

const dir = mkdtempSync(join(tmpdir(), 'pigeonhole-sqlite-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
const file = (key: string): string => join(dir, `${key}.db`);

storeContract('sqlite', (limits, key) => new SqliteStore({ file: file(key), ...limits }), {
  reopen: (store, limits, key) => (store.close(), new SqliteStore({ file: file(key), ...limits })),
});

test('sqlite: a batch that cannot commit leaves nothing behind and the store keeps working', (t) => {
  // The file cap stands in for a full disk: SQLite reports SQLITE_FULL either way.
  const store = new SqliteStore({ file: file('full'), maxMessagesPerUser: 1_000_000, maxBytes: 64 * 1024 });
  t.teardown(() => store.close());
  store.batch(() => store.enqueue('alice', { from: 'bob', body: Buffer.from('kept') }));
  const big = Buffer.alloc(4000, 0x61);
  const error = t.throws(() =>
    store.batch(() => {
      for (let i = 0; i < 100; i++) store.enqueue('alice', { from: 'bob', body: big });
    }),
  );
  t.is((error as { code?: string }).code, 'PH_ERR_STORE_WRITE_FAILED');
  // Rolled back as a whole, counts included; what was stored before is intact.
  t.is(store.count('alice'), 1);
  const kept = store.batch(() => store.dequeue('alice'));
  t.deepEqual(kept && Buffer.from(kept.body).toString(), 'kept');
  t.is(store.batch(() => store.enqueue('alice', { from: 'bob', body: Buffer.from('small') })).ok, true);
});

test('sqlite: the journal answers an applied batch again, and forgets acknowledged ones', (t) => {
  const store = new SqliteStore({ file: file('journal'), maxMessagesPerUser: 10, epoch: 7 });
  t.teardown(() => store.close());
  const journal = store.journal;
  store.batch(() => journal.record(1, Buffer.from('one'), 0));
  store.batch(() => journal.record(2, Buffer.from('two'), 1));
  t.is(journal.replyFor(1), null, 'acknowledged through 1: forgotten');
  t.is(journal.replyFor(2)?.toString(), 'two');
  t.is(journal.replyFor(3), null);
});

test('sqlite: a new server run (epoch) drops the journal of the last one, not the mailboxes', (t) => {
  const first = new SqliteStore({ file: file('epoch'), maxMessagesPerUser: 10, epoch: 1 });
  first.batch(() => {
    first.enqueue('carol', { from: 'dave', body: Buffer.from('hi') });
    first.journal.record(5, Buffer.from('reply'), 0);
  });
  first.close();
  const second = new SqliteStore({ file: file('epoch'), maxMessagesPerUser: 10, epoch: 2 });
  t.teardown(() => second.close());
  t.is(second.journal.replyFor(5), null);
  t.is(second.count('carol'), 1);
});

test('sqlite: a file that cannot be opened is a StoreError with a code', (t) => {
  const error = t.throws(() => new SqliteStore({ file: join(dir, 'no-such-dir', 'x.db'), maxMessagesPerUser: 1 }));
  t.is((error as { code?: string }).code, 'PH_ERR_STORE_OPEN_FAILED');
  t.regex(error?.message ?? '', /no-such-dir/);
});
