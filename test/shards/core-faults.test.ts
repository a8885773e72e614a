// A shard file damaged under a running shard: only the commands that touch the damaged
// mailbox fail; the rest of their batch is served; each damaged mailbox is logged once, as damage.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { type Logger, formatLine } from '../../lib/logger.js';
import { ShardCore } from '../../lib/shards/core.js';
import { ReplyReader, beginBatch, sealBatch, writeCompose, writeCount, writeRead } from '../../lib/shards/messages.js';
import { SqliteStore } from '../../lib/store/sqlite.js';
import { batchErrorFrom, storeErrorFrom } from '../../lib/store/sqlite-errors.js';
import type { MailboxStore } from '../../lib/store/store.js';
import { ByteWriter } from '../../lib/util/bytes.js';
import { overwrite, tableLeafPages } from '../helpers/damage.js';

const dir = mkdtempSync(join(tmpdir(), 'pigeonhole-core-damage-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

type Request = readonly ['count' | 'read', string] | readonly ['compose', string, string, string];

let seq = 1;
function batch(requests: Request[]): Buffer {
  const writer = new ByteWriter(64);
  beginBatch(writer);
  for (const request of requests) {
    const name = Buffer.from(request[1]);
    if (request[0] === 'compose') {
      const body = Buffer.from(request[3]);
      writeCompose(writer, name, 0, name.length, Buffer.from(request[2]), body, 0, body.length);
    } else if (request[0] === 'count') {
      writeCount(writer, name);
    } else {
      writeRead(writer, name);
    }
  }
  const bytes = writer.take();
  sealBatch(bytes, seq, seq - 1);
  seq++;
  return bytes;
}

/** Each reply's text, or null where the connection is to be dropped. */
function replies(reply: Buffer): (string | null)[] {
  const out: (string | null)[] = [];
  const reader = new ReplyReader(reply);
  while (reader.next()) out.push(reader.aborted ? null : reply.subarray(reader.start, reader.end).toString());
  return out;
}

/**
 * A shard file where the oldest messages of `victim` and `second-victim` sit on the
 * first table page and `healthy`'s elsewhere; that first page is then overwritten, as a
 * bad disk would.
 */
function damagedStore(name: string): string {
  const file = join(dir, `${name}.db`);
  const store = new SqliteStore({ file, maxMessagesPerUser: 1000 });
  const body = (i: number): Buffer => Buffer.from(`message ${i} `.padEnd(100, '.'));
  store.batch(() => {
    for (let i = 0; i < 80; i++) {
      store.enqueue('victim', { from: 'sender', body: body(i) });
      if (i < 10) store.enqueue('second-victim', { from: 'sender', body: body(i) });
    }
    for (let i = 0; i < 80; i++) store.enqueue('healthy', { from: 'sender', body: body(i) });
  });
  store.close();
  const first = tableLeafPages(file)[0];
  if (first === undefined) throw new Error('no table page');
  // The oldest rows sit at the end of the page (cells grow down from it).
  overwrite(file, first.offset + first.size - 1024, Buffer.alloc(1024, 0xff));
  return file;
}

test('a READ that meets damage drops only its own connection; its batch is served; each damaged mailbox is logged once, by name', (t) => {
  const file = damagedStore('fence');
  const lines: string[] = [];
  const logger: Logger = { info: () => {}, warn: () => {}, error: (fields, message) => lines.push(formatLine(fields, message)) };
  // Opened without the start's check, as if the damage happened while it ran.
  const core = new ShardCore(new SqliteStore({ file, maxMessagesPerUser: 1000 }), logger);
  t.teardown(() => core.close());

  const first = replies(core.handle(batch([['read', 'healthy'], ['read', 'victim'], ['count', 'healthy'], ['compose', 'healthy', 'bob', 'new one'], ['read', 'healthy']])));
  t.deepEqual(first, ['sender\nmessage 0 '.padEnd(107, '.') + '\n', null, '79\n', 'MESSAGE SENT\n', 'sender\nmessage 1 '.padEnd(107, '.') + '\n']);
  t.is(lines.length, 1, lines.join('\n'));
  t.regex(lines[0] ?? '', /PH_ERR_STORE_DAMAGED/);
  t.regex(lines[0] ?? '', /victim/);
  t.notRegex(lines[0] ?? '', /WRITE_FAILED/);

  // From then on the victim's mailbox is fenced off: no count, no READ, no COMPOSE to it,
  // and no more log lines; the healthy mailbox goes on.
  const later = replies(core.handle(batch([['count', 'victim'], ['read', 'victim'], ['compose', 'victim', 'bob', 'x'], ['count', 'healthy']])));
  t.deepEqual(later, [null, null, 'MESSAGE FAILED\n', '79\n']);
  t.is(lines.length, 1, 'logged once');

  // Another damaged mailbox at once after: a line of its own, naming it.
  t.deepEqual(replies(core.handle(batch([['read', 'second-victim'], ['count', 'healthy']]))), [null, '79\n']);
  t.is(lines.length, 2, lines.join('\n'));
  t.regex(lines[1] ?? '', /PH_ERR_STORE_DAMAGED/);
  t.regex(lines[1] ?? '', /second-victim/);
});

test('the start check refuses the same file, naming it and the way out', (t) => {
  const file = damagedStore('refused');
  const error = t.throws(() => new SqliteStore({ file, maxMessagesPerUser: 1000, verify: true, dataDir: dir }));
  t.is((error as { code?: string }).code, 'PH_ERR_STORE_DAMAGED');
  t.true(error?.message.includes(file), error?.message);
  t.regex(error?.message ?? '', /'pigeonhole check --data-dir .*'.*'pigeonhole salvage --data-dir .*'/);
});

test('a store that cannot commit at all, batch after batch, costs the log a line per cause, not one per batch', (t) => {
  const lines: string[] = [];
  const logger: Logger = { info: () => {}, warn: () => {}, error: (fields, message) => lines.push(formatLine(fields, message)) };
  const file = join(dir, 'full.db');
  const store = new SqliteStore({ file, maxMessagesPerUser: 1000 });
  store.batch(() => store.enqueue('alice', { from: 'bob', body: Buffer.from('kept') }));
  // Every commit fails as SqliteStore reports a disk with no byte left.
  const full = storeErrorFrom(Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' }), 'write', file);
  const failing: MailboxStore = {
    batch: () => {
      throw full;
    },
    enqueue: (user, message) => store.enqueue(user, message),
    dequeue: (user) => store.dequeue(user),
    count: (user) => store.count(user),
    close: () => store.close(),
  };
  const core = new ShardCore(failing, logger);
  t.teardown(() => core.close());
  for (let i = 0; i < 200; i++) {
    t.deepEqual(replies(core.handle(batch([['compose', 'alice', 'bob', 'x'], ['read', 'alice']]))), ['MESSAGE FAILED\n', null]);
  }
  // The retry without COMPOSEs and the final failure: two causes, one line each.
  t.is(lines.length, 2, lines.join('\n'));
  t.true(lines.every((line) => line.includes('code=PH_ERR_STORE_FULL')), lines.join('\n'));
});

/** A store over `file` whose next `failures` commits fail as SqliteStore reports a commit whose outcome is unknown (the work has run). */
function uncertainStore(file: string, failures: number): { store: MailboxStore } {
  const sqlite = new SqliteStore({ file, maxMessagesPerUser: 1000 });
  sqlite.batch(() => sqlite.enqueue('alice', { from: 'bob', body: Buffer.from('kept') }));
  let left = failures;
  const store: MailboxStore = {
    batch: <T>(work: () => T): T => {
      if (left === 0) return sqlite.batch(work);
      left--;
      // The work runs, then the commit fails: rolled back here, maybe not in the file.
      try {
        sqlite.batch(() => {
          work();
          throw new Error('rolled back by the test');
        });
      } catch {}
      throw batchErrorFrom(Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR_FSYNC' }), true, file);
    },
    enqueue: (user, message) => sqlite.enqueue(user, message),
    dequeue: (user) => sqlite.dequeue(user),
    count: (user) => sqlite.count(user),
    close: () => sqlite.close(),
  };
  return { store };
}

/** A core over uncertainStore(), and the error lines it logs. */
function uncertainCore(t: ExecutionContext, name: string, failures: number): { core: ShardCore; lines: string[] } {
  const lines: string[] = [];
  const logger: Logger = { info: () => {}, warn: () => {}, error: (fields, message) => lines.push(formatLine(fields, message)) };
  const core = new ShardCore(uncertainStore(join(dir, name), failures).store, logger);
  t.teardown(() => core.close());
  return { core, lines };
}

test('a commit whose outcome is unknown is settled by committing the batch again without its COMPOSEs', (t) => {
  const { core, lines } = uncertainCore(t, 'uncertain-once.db', 1);
  t.deepEqual(replies(core.handle(batch([['compose', 'alice', 'bob', 'x'], ['read', 'alice']]))), ['MESSAGE FAILED\n', 'bob\nkept\n']);
  t.deepEqual(replies(core.handle(batch([['count', 'alice']]))), ['0\n']);
  t.regex(lines.join('\n'), /may be in the file or not.*code=PH_ERR_STORE_OUTCOME_UNKNOWN/);
});

test('a commit whose outcome is unknown, and a retry that cannot commit either: no answer, the shard stops', (t) => {
  const { core, lines } = uncertainCore(t, 'uncertain-twice.db', 2);
  // Not COMPOSE failed and READ dropped "with its message still stored": the file may say otherwise.
  t.throws(() => core.handle(batch([['compose', 'alice', 'bob', 'x'], ['read', 'alice']])), { code: 'PH_ERR_STORE_OUTCOME_UNKNOWN' });
  t.regex(lines.join('\n'), /the shard stops/);
});

test('SqliteStore: only a failure at the commit itself, other than a full disk, leaves the outcome unknown', (t) => {
  const io = Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR_FSYNC' });
  const full = Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
  t.is(batchErrorFrom(io, true, 'f.db').code, 'PH_ERR_STORE_OUTCOME_UNKNOWN');
  t.is(batchErrorFrom(io, false, 'f.db').code, 'PH_ERR_STORE_WRITE_FAILED');
  t.is(batchErrorFrom(full, true, 'f.db').code, 'PH_ERR_STORE_FULL');
});
