// A write-ahead log damaged in its middle is told apart from one whose end was torn by a
// crash: SQLite drops everything after the first frame that fails, so only the reader
// can say that committed transactions follow it.
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import Database from 'better-sqlite3';
import { findWalDamage } from '../../lib/store/wal-damage.js';

const TRANSACTIONS = 200;
const ROWS_PER_TRANSACTION = 10;

/**
 * A database whose WAL still holds every transaction, as a crash leaves it: copied while
 * the connection that wrote it is open (closing would checkpoint the log away).
 */
function crashedDatabase(t: { teardown(fn: () => void): void }): { file: string; wal: Buffer; frameBytes: number } {
  const dir = mkdtempSync(join(tmpdir(), 'pigeonhole-wal-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const live = join(dir, 'live.db');
  const db = new Database(live);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('wal_autocheckpoint = 0');
    db.exec('CREATE TABLE t (x BLOB)');
    const insert = db.prepare('INSERT INTO t VALUES (?)');
    const transaction = db.transaction((i: number) => {
      for (let row = 0; row < ROWS_PER_TRANSACTION; row++) insert.run(Buffer.alloc(100, i));
    });
    for (let i = 0; i < TRANSACTIONS; i++) transaction(i);
    const file = join(dir, 'copy.db');
    copyFileSync(live, file);
    copyFileSync(`${live}-wal`, `${file}-wal`);
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    return { file, wal: readFileSync(`${file}-wal`), frameBytes: 24 + pageSize };
  } finally {
    db.close();
  }
}

function rows(file: string): number {
  const db = new Database(file);
  try {
    return db.prepare('SELECT count(*) FROM t').pluck().get() as number;
  } finally {
    db.close();
  }
}

/** The WAL with one byte of frame `frame` (from 0) flipped, `at` bytes into the frame. */
function flipped(wal: Buffer, frameBytes: number, frame: number, at: number): Buffer {
  const copy = Buffer.from(wal);
  const offset = 32 + frame * frameBytes + at;
  copy[offset] = (copy[offset] as number) ^ 0xff;
  return copy;
}

test('a whole log, and no log at all, are not damage', (t) => {
  const { file } = crashedDatabase(t);
  t.is(findWalDamage(file), null);
  t.is(findWalDamage(join(tmpdir(), 'no-such-database.db')), null);
  t.is(rows(file), TRANSACTIONS * ROWS_PER_TRANSACTION);
});

test('a byte changed in a frame in the middle is damage, with the transactions committed after it; SQLite would drop them', (t) => {
  const { file, wal, frameBytes } = crashedDatabase(t);
  const frames = Math.floor((wal.length - 32) / frameBytes);
  const middle = Math.floor(frames / 3);
  // In the page's bytes, then in the frame header's stored checksum.
  for (const at of [24 + 100, 17]) {
    writeFileSync(`${file}-wal`, flipped(wal, frameBytes, middle, at));
    const damage = findWalDamage(file);
    t.like(damage, { file: `${file}-wal`, frame: middle + 1, frames });
    t.true((damage?.commitsAfter ?? 0) > TRANSACTIONS / 2, `${damage?.commitsAfter} commits after the damage`);
  }
  // What the reader is for: SQLite takes the damage for the end of the log.
  t.true(rows(file) < TRANSACTIONS * ROWS_PER_TRANSACTION / 2);
});

test("a damaged last frame, a hole with only the last transaction behind it, a log cut short and a log whose header is damaged are a crash's leftovers, left to SQLite", (t) => {
  const { file, wal, frameBytes } = crashedDatabase(t);
  const frames = Math.floor((wal.length - 32) / frameBytes);
  writeFileSync(`${file}-wal`, flipped(wal, frameBytes, frames - 1, 24 + 100));
  t.is(findWalDamage(file), null, 'the last frame');
  // After a power loss the last transaction can reach the disk before a frame in front
  // of it: with fsync it was never acknowledged.
  writeFileSync(`${file}-wal`, flipped(wal, frameBytes, frames - 2, 24 + 100));
  t.is(findWalDamage(file), null, 'only the last transaction behind the bad frame');
  writeFileSync(`${file}-wal`, wal.subarray(0, wal.length - frameBytes / 2));
  t.is(findWalDamage(file), null, 'cut short');
  const header = Buffer.from(wal);
  header[17] = (header[17] as number) ^ 0xff;
  writeFileSync(`${file}-wal`, header);
  t.is(findWalDamage(file), null, 'the header');
});
