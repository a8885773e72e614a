import { accessSync, closeSync, constants, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { StoreError, errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import { shardIndex } from '../util/shard-hash.js';
import { SCHEMA } from './sqlite.js';

/**
 * A data directory holds one SQLite file per shard, in a generation folder named by
 * `pigeonhole.json`:
 *
 *   DATA/pigeonhole.json        {"format":1,"shards":2,"generation":1}
 *   DATA/lock.db                held locked by the server using the directory
 *   DATA/gen-1/shard-0.db       (+ -wal, -shm while open)
 *   DATA/gen-1/shard-1.db
 *
 * Starting with another shard count migrates: every message is copied, in order, into a
 * new generation laid out for the new count; then pigeonhole.json is replaced by an
 * atomic rename, and only then is the old generation removed. A crash at any point
 * leaves either the old layout intact (the half-built generation is removed at the next
 * start) or the new one complete.
 */
const LAYOUT_FILE = 'pigeonhole.json';
const LOCK_FILE = 'lock.db';
const FORMAT = 1;
const MIGRATION_BATCH_ROWS = 50_000;

interface Layout {
  format: number;
  shards: number;
  generation: number;
}

export interface PreparedDataDir {
  /** The database file of each shard, by shard id. */
  readonly files: string[];
  /** How many messages were moved to a new layout at this start (0 when none). */
  readonly migrated: number;
  /** Gives the directory up (drops the lock), once every shard has closed its file. */
  release(): void;
}

/**
 * Makes `dir` ready for `shards` shards and locks it for this process; throws StoreError
 * PH_ERR_STORE_OPEN_FAILED when it can't.
 */
export function prepareDataDir(dir: string, shards: number, logger: Logger): PreparedDataDir {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.R_OK | constants.W_OK);
  } catch (cause) {
    throw new StoreError('PH_ERR_STORE_OPEN_FAILED', `data directory ${dir} is not usable: ${errorMessage(cause)}`, { cause });
  }
  const release = lock(dir);
  try {
    return { ...layOut(dir, shards, logger), release };
  } catch (cause) {
    release();
    if (cause instanceof StoreError) throw cause;
    throw new StoreError('PH_ERR_STORE_OPEN_FAILED', `data directory ${dir} could not be prepared: ${errorMessage(cause)}`, { cause });
  }
}

/**
 * One server per data directory: a second one would migrate or remove files the first
 * still has open. The lock is SQLite's own exclusive lock on `lock.db`, held for as long
 * as the server runs: the operating system drops it when the process ends however it
 * ends (kill -9 included), so there is no stale lock to clean up and no pid to trust.
 */
function lock(dir: string): () => void {
  const file = join(dir, LOCK_FILE);
  let db: Database.Database | null = null;
  try {
    // timeout 0: a lock that is held is an answer, not something to wait for.
    db = new Database(file, { timeout: 0 });
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE');
  } catch (cause) {
    db?.close();
    if ((cause as { code?: string }).code === 'SQLITE_BUSY') {
      throw new StoreError('PH_ERR_STORE_OPEN_FAILED', `data directory ${dir} is in use by another pigeonhole server`, { cause });
    }
    throw new StoreError('PH_ERR_STORE_OPEN_FAILED', `cannot lock data directory ${dir}: ${errorMessage(cause)}`, { cause });
  }
  const held = db;
  return () => {
    if (held.open) held.close();
  };
}

function layOut(dir: string, shards: number, logger: Logger): { files: string[]; migrated: number } {
  const current = readLayout(dir);
  let layout = current;
  let migrated = 0;
  if (layout === null) {
    layout = { format: FORMAT, shards, generation: 1 };
    mkdirSync(generationDir(dir, layout.generation), { recursive: true });
    writeLayout(dir, layout);
  } else if (layout.shards !== shards) {
    const next: Layout = { format: FORMAT, shards, generation: layout.generation + 1 };
    const started = Date.now();
    migrated = migrate(dir, layout, next);
    writeLayout(dir, next);
    logger.info({ migrated }, `moved ${migrated} stored messages from ${layout.shards} shard files to ${shards} in ${Date.now() - started} ms`);
    layout = next;
  }
  removeOtherGenerations(dir, layout.generation);
  return { files: shardFiles(dir, layout), migrated };
}

function shardFiles(dir: string, layout: Layout): string[] {
  return Array.from({ length: layout.shards }, (_, shardId) => join(generationDir(dir, layout.generation), `shard-${shardId}.db`));
}

function generationDir(dir: string, generation: number): string {
  return join(dir, `gen-${generation}`);
}

function readLayout(dir: string): Layout | null {
  let text: string;
  try {
    text = readFileSync(join(dir, LAYOUT_FILE), 'utf8');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new StoreError('PH_ERR_STORE_OPEN_FAILED', `cannot read ${join(dir, LAYOUT_FILE)}: ${errorMessage(cause)}`, { cause });
  }
  let layout: Partial<Layout> = {};
  try {
    layout = JSON.parse(text) as Partial<Layout>;
  } catch {
    // reported below as not a layout
  }
  if (layout.format !== FORMAT || !Number.isInteger(layout.shards) || !Number.isInteger(layout.generation)) {
    throw new StoreError('PH_ERR_STORE_OPEN_FAILED', `${join(dir, LAYOUT_FILE)} is not a pigeonhole data directory layout (format ${FORMAT})`);
  }
  return layout as Layout;
}

function writeLayout(dir: string, layout: Layout): void {
  const file = join(dir, LAYOUT_FILE);
  const temporary = `${file}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(layout)}\n`);
  fsyncPath(temporary);
  renameSync(temporary, file);
  fsyncPath(dir);
}

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function removeOtherGenerations(dir: string, keep: number): void {
  for (const entry of readdirSync(dir)) {
    if (/^gen-\d+$/.test(entry) && entry !== `gen-${keep}`) rmSync(join(dir, entry), { recursive: true, force: true });
  }
}

/** Copies every message of `from` into a fresh generation laid out as `to`; returns how many. */
function migrate(dir: string, from: Layout, to: Layout): number {
  const target = generationDir(dir, to.generation);
  rmSync(target, { recursive: true, force: true });
  mkdirSync(target, { recursive: true });
  const outputs = shardFiles(dir, to).map((file) => {
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.exec(SCHEMA);
    return { db, insert: db.prepare('INSERT INTO messages (recipient, sender, body) VALUES (?, ?, ?)') };
  });
  let moved = 0;
  try {
    const begin = (): void => outputs.forEach(({ db }) => db.exec('BEGIN'));
    const commit = (): void => outputs.forEach(({ db }) => db.exec('COMMIT'));
    begin();
    for (const file of shardFiles(dir, from)) {
      const source = new Database(file, { fileMustExist: false });
      try {
        source.exec(SCHEMA);
        // In seq order: a user's messages all sit in one source file, so each mailbox
        // keeps its FIFO order in the target.
        const rows = source.prepare('SELECT recipient, sender, body FROM messages ORDER BY seq').iterate() as IterableIterator<{
          recipient: string;
          sender: string;
          body: Buffer;
        }>;
        for (const row of rows) {
          const shard = shardIndex(Buffer.from(row.recipient, 'latin1'), to.shards);
          (outputs[shard] as (typeof outputs)[number]).insert.run(row.recipient, row.sender, row.body);
          if (++moved % MIGRATION_BATCH_ROWS === 0) {
            commit();
            begin();
          }
        }
      } finally {
        source.close();
      }
    }
    commit();
  } finally {
    // Closing checkpoints each WAL into its file (and syncs it) before the layout flips.
    for (const { db } of outputs) db.close();
  }
  return moved;
}
