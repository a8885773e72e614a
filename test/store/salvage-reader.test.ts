// Salvage's count of what it could not save is exact only when it can know: a count it
// calls exact must add up, with what it saved, to what the file held.
import { copyFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import Database from 'better-sqlite3';
import { readShardFile } from '../../lib/store/salvage-reader.js';
import { createShardFile } from '../../lib/store/schema.js';
import { overwrite, pageSize, readBytes, tableLeafPages } from '../helpers/damage.js';

const MESSAGES = 3_000;

/** A cleanly closed shard file of MESSAGES messages of 100 bytes to 30 mailboxes. */
function shardFile(dir: string): string {
  const file = join(dir, 'shard.db');
  createShardFile(file);
  const db = new Database(file);
  try {
    const insert = db.prepare('INSERT INTO messages (recipient, sender, body) VALUES (?, ?, ?)');
    db.transaction(() => {
      for (let i = 0; i < MESSAGES; i++) insert.run(`user${i % 30}`, 'sender', Buffer.alloc(100, 0x61 + (i % 26)));
    })();
  } finally {
    db.close();
  }
  return file;
}

/** Deterministic bytes that are not a page SQLite wrote. */
function noise(seed: number, length: number): Buffer {
  const bytes = Buffer.alloc(length);
  let state = seed;
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0;
    bytes[i] = state >>> 24;
  }
  return bytes;
}

test('damage to many pages, index and table alike: a count called exact adds up, and one that cannot be known is not called exact', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pigeonhole-salvage-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const clean = shardFile(dir);
  const size = pageSize(clean);
  const pages = statSync(clean).size / size;
  let inexact = 0;
  for (let seed = 1; seed <= 8; seed++) {
    const file = join(dir, `damaged-${seed}.db`);
    copyFileSync(clean, file);
    // 18 pages past the schema's, chosen by the seed, overwritten whole or in part.
    const chosen = noise(seed, 18).map((byte) => 2 + (byte % (pages - 1)));
    for (const [i, page] of chosen.entries()) {
      const part = seed % 2 === 0 ? size : 512;
      overwrite(file, (page - 1) * size + (i % 2) * (size - part), noise(seed * 7 + page, part));
    }
    let saved = 0;
    const contents = readShardFile(file, () => saved++);
    t.is(contents.saved, saved);
    if (contents.exact) t.is(contents.saved + contents.lost, MESSAGES, `seed ${seed}: ${contents.problems.join('; ')}`);
    else inexact++;
  }
  t.true(inexact > 0, 'some of these cannot be counted');
});

test("a table root replaced by one of its leaves reads whole, but hides the rest: with the index damaged too, the loss is not called exact", (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pigeonhole-salvage-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = shardFile(dir);
  const size = pageSize(file);
  const db = new Database(file, { readonly: true });
  const roots = db.prepare("SELECT name, rootpage FROM sqlite_schema WHERE name IN ('messages', 'messages_by_recipient')").all() as { name: string; rootpage: number }[];
  db.close();
  const tableRoot = roots.find((root) => root.name === 'messages')?.rootpage as number;
  const indexRoot = roots.find((root) => root.name === 'messages_by_recipient')?.rootpage as number;
  const leaf = tableLeafPages(file).find((page) => page.number !== tableRoot);
  if (leaf === undefined) throw new Error('no table leaf');
  // SQLite now sees a table of one leaf, and meets no error walking it.
  copyPage(file, leaf.number, tableRoot, size);
  overwrite(file, (indexRoot - 1) * size, noise(1, size));

  const contents = readShardFile(file, () => {});
  t.true(contents.saved < MESSAGES / 2, `${contents.saved} saved`);
  t.false(contents.exact, contents.problems.join('; '));
  t.true(contents.problems.some((problem) => problem.startsWith('the index of mailboxes cannot be read')));
});

function copyPage(file: string, from: number, to: number, size: number): void {
  overwrite(file, (to - 1) * size, readBytes(file, (from - 1) * size, size));
}
