import { accessSync, constants, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { StoreError, errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import {
  type DiskSpaceOptions,
  defaultMinFreeBytes,
  filesystemBytes,
  freeBytes,
  releaseReserve,
  removeStaleReserves,
  reserveBytesFor,
  takeReserve,
} from './disk-space.js';
import { recoveryAdvice } from './integrity.js';
import { FORMAT, LOCK_FILE, type Layout, createGeneration, generationDir, generationsIn, keepSalvaged, layoutProblems, layoutWayOut, readLayout, shardFiles, writeLayout } from './layout.js';
import { migrate } from './migrate.js';
import { holdsNoMessage } from './schema.js';

/**
 * Readying a data directory (its layout is in layout.ts) for a server with `shards`
 * shards. Starting with another shard count migrates (migrate.ts): every message is
 * copied, in order, into a new generation laid out for the new count; then
 * pigeonhole.json is replaced by an atomic rename, and only then is the old generation
 * removed. A crash at any point leaves either the old layout intact (the half-built
 * generation is removed at the next start) or the new one complete.
 */
export interface PreparedDataDir {
  /** The database file of each shard, by shard id. */
  readonly files: string[];
  /** How many messages were moved to a new layout at this start (0 when none). */
  readonly migrated: number;
  /** The watermark and reserve the shards keep (disk-space.ts). */
  readonly disk: DiskSpaceOptions;
  /** Gives the directory up (drops the lock), once every shard has closed its file. */
  release(): void;
}

export interface DataDirOptions {
  /** COMPOSE is refused below this much free disk; default from the filesystem's size. */
  readonly minFreeBytes?: number;
}

/**
 * Makes `dir` ready for `shards` shards and locks it for this process; throws StoreError
 * PH_ERR_STORE_OPEN_FAILED when it can't, PH_ERR_STORE_LAYOUT_MISMATCH when its files
 * are not those its layout records.
 */
export function prepareDataDir(dir: string, shards: number, logger: Logger, options: DataDirOptions = {}): PreparedDataDir {
  const release = openDataDir(dir);
  try {
    const disk = prepareDisk(dir, logger, options);
    return { ...layOut(dir, shards, logger), disk, release };
  } catch (cause) {
    release();
    if (cause instanceof StoreError) throw cause;
    throw new StoreError('PH_ERR_STORE_OPEN_FAILED', `data directory ${dir} could not be prepared: ${errorMessage(cause)}`, { cause });
  }
}

/** Creates `dir` if needed and locks it; returns the unlock. For the server and the tools alike. */
export function openDataDir(dir: string): () => void {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.R_OK | constants.W_OK);
  } catch (cause) {
    throw new StoreError('PH_ERR_STORE_OPEN_FAILED', `data directory ${dir} is not usable: ${errorMessage(cause)}`, { cause });
  }
  return lock(dir);
}

/**
 * One process per data directory: a second server would migrate or remove files the
 * first still has open. The lock is SQLite's own exclusive lock on `lock.db`, held for
 * as long as the server runs: the operating system drops it when the process ends
 * however it ends (kill -9 included), so there is no stale lock to clean up and no pid
 * to trust.
 */
function lock(dir: string): () => void {
  const file = join(dir, LOCK_FILE);
  let db: Database.Database | null = null;
  try {
    // timeout 0: a lock that is held is an answer, not something to wait for.
    db = new Database(file, { timeout: 0 });
    // No journal file: taking the lock must not need a byte of disk, or a server could
    // not start on a disk another program has filled.
    db.pragma('journal_mode = MEMORY');
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE');
  } catch (cause) {
    db?.close();
    if ((cause as { code?: string }).code === 'SQLITE_BUSY') {
      throw new StoreError('PH_ERR_STORE_OPEN_FAILED', `data directory ${dir} is in use by another pigeonhole process`, { cause });
    }
    throw new StoreError('PH_ERR_STORE_OPEN_FAILED', `cannot lock data directory ${dir}: ${errorMessage(cause)}`, { cause });
  }
  const held = db;
  return () => {
    if (held.open) held.close();
  };
}

/**
 * The watermark and the reserve, before any shard opens its file: on a disk already
 * below the watermark the reserve is given back first, so that the shards can open
 * (a database left by kill -9 needs room for its -shm index) and serve reads.
 */
function prepareDisk(dir: string, logger: Logger, options: DataDirOptions): DiskSpaceOptions {
  const minFreeBytes = options.minFreeBytes ?? defaultMinFreeBytes(filesystemBytes(dir));
  const disk: DiskSpaceOptions = { dir, minFreeBytes, reserveBytes: reserveBytesFor(minFreeBytes) };
  removeStaleReserves(dir);
  if (minFreeBytes === 0) {
    // Asked for no watermark: no reserve either.
    releaseReserve(dir);
    return disk;
  }
  const free = freeBytes(dir);
  if (free < minFreeBytes) {
    const released = releaseReserve(dir);
    logger.warn(
      { code: 'PH_ERR_STORE_FULL', free, minFreeBytes },
      `the disk of ${dir} has ${free} bytes free, below the ${minFreeBytes} kept free: COMPOSE is refused until READs or the operator make room${released ? '; its reserve file was released for reads' : ''}`,
    );
  } else if (free >= minFreeBytes + disk.reserveBytes) {
    takeReserve(dir, disk.reserveBytes);
  }
  return disk;
}

function layOut(dir: string, shards: number, logger: Logger): { files: string[]; migrated: number } {
  const found = readLayout(dir);
  let layout = found === null ? null : keepSalvaged(dir, found);
  let migrated = 0;
  if (layout === null) {
    let found = generationsIn(dir);
    // A first start that stopped between making its files and naming them in its layout
    // left nothing that could hold a message: it is made again.
    if (found.length === 1 && found[0] === 1 && holdsNoMessage(generationDir(dir, 1), readdirSync(generationDir(dir, 1)))) {
      logger.warn({}, `data directory ${dir}: gen-1/ holds no message and there is no pigeonhole.json (a first start that stopped midway): made again`);
      rmSync(generationDir(dir, 1), { recursive: true, force: true });
      found = [];
    }
    if (found.length > 0) {
      throw new StoreError(
        'PH_ERR_STORE_LAYOUT_MISMATCH',
        `data directory ${dir} has no pigeonhole.json but holds ${found.map((n) => `gen-${n}/`).join(', ')}: nothing was changed.${layoutWayOut(dir)}`,
      );
    }
    layout = { format: FORMAT, shards, generation: 1 };
    // Every shard file exists before the layout names it: a layout with a missing file
    // is refused at the next start, and a crash here leaves no layout at all (and empty
    // files, made again above).
    createGeneration(dir, layout);
    writeLayout(dir, layout);
  } else {
    const problems = layoutProblems(dir, layout);
    if (problems.length > 0) {
      throw new StoreError(
        'PH_ERR_STORE_LAYOUT_MISMATCH',
        `data directory ${dir} does not match its pigeonhole.json (${layout.shards} shards, generation ${layout.generation}): ${problems.join('; ')}. Nothing was changed. Put the files back (from a backup), or run 'pigeonhole salvage --data-dir ${dir}' to rebuild a generation from the shard files that are there (the messages of a missing file are lost)`,
      );
    }
    if (layout.shards !== shards) {
      const next: Layout = { format: FORMAT, shards, generation: layout.generation + 1 };
      const started = Date.now();
      try {
        migrated = migrate(dir, layout, next);
      } catch (cause) {
        rmSync(join(dir, `gen-${next.generation}`), { recursive: true, force: true });
        if (!(cause instanceof StoreError) || cause.code !== 'PH_ERR_STORE_DAMAGED') throw cause;
        throw new StoreError('PH_ERR_STORE_DAMAGED', `${cause.message}; the layout was not changed. ${recoveryAdvice(dir)}, then start with the new shard count`, { cause });
      }
      writeLayout(dir, next);
      logger.info({ migrated }, `moved ${migrated} stored messages from ${layout.shards} shard files to ${shards} in ${Date.now() - started} ms`);
      layout = next;
    }
  }
  removeOtherGenerations(dir, layout.generation);
  return { files: shardFiles(dir, layout), migrated };
}

/** Half-built generations of an interrupted migration or salvage, and replaced ones. */
function removeOtherGenerations(dir: string, keep: number): void {
  for (const generation of generationsIn(dir)) {
    if (generation !== keep) rmSync(join(dir, `gen-${generation}`), { recursive: true, force: true });
  }
}
