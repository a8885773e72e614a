import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StoreError, errorMessage } from '../errors.js';
import { createShardFile } from './schema.js';

/**
 * What a data directory holds, as `pigeonhole.json` records it:
 *
 *   DATA/pigeonhole.json        {"format":1,"shards":2,"generation":1}
 *   DATA/lock.db                held locked by the process using the directory
 *   DATA/reserve                room given back when the disk fills (disk-space.ts)
 *   DATA/gen-1/shard-0.db       (+ -wal, -shm while open)
 *   DATA/gen-1/shard-1.db
 *
 * A generation folder holds exactly one file per shard: a missing one, or one that does
 * not belong to the layout, means someone else changed the directory, and the server
 * will not guess (it would serve an empty mailbox in place of lost ones).
 */
export const LAYOUT_FILE = 'pigeonhole.json';
export const LOCK_FILE = 'lock.db';
export const FORMAT = 1;

export interface Layout {
  readonly format: number;
  readonly shards: number;
  readonly generation: number;
  /**
   * Written by salvage in the same atomic flip that makes its new generation current:
   * the old generation, to be kept under the name `as`, not removed as a replaced one.
   * Whoever opens the directory next finishes the rename (salvage may have stopped
   * before it) and writes the layout again without it: see keepSalvaged().
   */
  readonly keep?: { readonly generation: number; readonly as: string };
}

// What salvage names a kept generation: salvaged-gen-N, or salvaged-gen-N.K if taken
// (freeKeptName()); a layout's `keep` may name nothing else.
const KEPT_NAME = /^salvaged-gen-\d+(\.\d+)?$/;

/** The name under which salvage keeps generation `generation`: the first of salvaged-gen-N, salvaged-gen-N.2, ... not taken. */
export function freeKeptName(dir: string, generation: number): string {
  const base = `salvaged-gen-${generation}`;
  if (!existsSync(join(dir, base))) return base;
  for (let n = 2; ; n++) if (!existsSync(join(dir, `${base}.${n}`))) return `${base}.${n}`;
}

export function generationDir(dir: string, generation: number): string {
  return join(dir, `gen-${generation}`);
}

export function shardFileName(shardId: number): string {
  return `shard-${shardId}.db`;
}

export function shardFiles(dir: string, layout: Layout): string[] {
  return Array.from({ length: layout.shards }, (_, shardId) => join(generationDir(dir, layout.generation), shardFileName(shardId)));
}

/** The generation folders present (gen-N), lowest first. */
export function generationsIn(dir: string): number[] {
  return readdirSync(dir)
    .map((entry) => /^gen-(\d+)$/.exec(entry)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

/** The layout, or null in a directory that has none yet. */
export function readLayout(dir: string): Layout | null {
  const file = join(dir, LAYOUT_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new StoreError('PH_ERR_STORE_OPEN_FAILED', `cannot read ${file}: ${errorMessage(cause)}`, { cause });
  }
  const layout = parsedLayout(text);
  if (isForeignFormat(layout)) {
    // Not to be overwritten: another version of pigeonhole wrote it, and reads it.
    throw new StoreError('PH_ERR_STORE_OPEN_FAILED', `${file} is a layout of format ${layout.format}, from another version of pigeonhole; this one reads format ${FORMAT}`);
  }
  if (layout.format !== FORMAT || !Number.isInteger(layout.shards) || !Number.isInteger(layout.generation) || !isKeep(layout.keep, layout.generation)) {
    throw new StoreError('PH_ERR_STORE_OPEN_FAILED', `${file} is not a pigeonhole data directory layout (format ${FORMAT}).${layoutWayOut(dir)}`);
  }
  return layout as Layout;
}

/** Whether `dir` holds a pigeonhole.json of another format: another version's, not to be written over. */
export function hasForeignLayout(dir: string): boolean {
  try {
    return isForeignFormat(parsedLayout(readFileSync(join(dir, LAYOUT_FILE), 'utf8')));
  } catch {
    return false;
  }
}

/** What a pigeonhole.json says, as far as it says anything ({} for what is not a JSON object). */
function parsedLayout(text: string): Partial<Layout> {
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null ? (parsed as Partial<Layout>) : {};
  } catch {
    return {};
  }
}

function isKeep(keep: unknown, generation: number | undefined): boolean {
  if (keep === undefined) return true;
  if (typeof keep !== 'object' || keep === null) return false;
  const { generation: kept, as } = keep as Partial<NonNullable<Layout['keep']>>;
  return Number.isInteger(kept) && (kept as number) < (generation as number) && typeof as === 'string' && KEPT_NAME.test(as);
}

function isForeignFormat(layout: Partial<Layout>): boolean {
  return typeof layout.format === 'number' && layout.format !== FORMAT;
}

/**
 * How to write pigeonhole.json again by hand, for a directory whose layout is lost or
 * unreadable: which generation folder to name. Empty when it holds none.
 */
export function layoutWayOut(dir: string): string {
  const last = generationsIn(dir).at(-1);
  if (last === undefined) return '';
  return ` If gen-${last}/ is the data to serve, write {"format":${FORMAT},"shards":N,"generation":${last}} into ${join(dir, LAYOUT_FILE)} (N: its number of shard files)`;
}

/** Replaces pigeonhole.json atomically (write, sync, rename, sync the directory). */
export function writeLayout(dir: string, layout: Layout): void {
  // The generation's files are synced by SQLite as it closes them; their names in its
  // folder are synced here, before a layout names them, or a power loss could leave a
  // layout whose files are gone.
  fsyncPath(generationDir(dir, layout.generation));
  const file = join(dir, LAYOUT_FILE);
  const temporary = `${file}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(layout)}\n`);
  fsyncPath(temporary);
  renameSync(temporary, file);
  fsyncPath(dir);
}

/**
 * Keeps the generation a salvage asked to keep (Layout.keep), renaming it if salvage
 * stopped before it could, and returns the layout as rewritten without the request.
 * Called before anything removes the generations the layout does not name.
 */
export function keepSalvaged(dir: string, layout: Layout): Layout {
  const { keep, ...rest } = layout;
  if (keep === undefined) return layout;
  const from = generationDir(dir, keep.generation);
  const to = join(dir, keep.as);
  if (existsSync(from)) {
    if (existsSync(to)) {
      throw new StoreError('PH_ERR_STORE_LAYOUT_MISMATCH', `data directory ${dir}: salvage kept gen-${keep.generation}/ as ${keep.as}/, which another folder of that name now holds. Nothing was changed: rename one of them and remove "keep" from ${join(dir, LAYOUT_FILE)}`);
    }
    renameSync(from, to);
    fsyncPath(dir);
  }
  // A layout whose generation is gone is the start's to refuse, with its advice.
  if (!existsSync(generationDir(dir, rest.generation))) return layout;
  writeLayout(dir, rest);
  return rest;
}

export function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * How the generation folder differs from the layout: shard files missing, and files
 * that are not one of its shards' (a shard file of another layout, say). Empty when
 * they match.
 */
export function layoutProblems(dir: string, layout: Layout): string[] {
  const folder = generationDir(dir, layout.generation);
  const name = `gen-${layout.generation}`;
  if (!existsSync(folder)) return [`${name}/ is missing`];
  const expected = new Set(Array.from({ length: layout.shards }, (_, shardId) => shardFileName(shardId)));
  const entries = readdirSync(folder);
  const problems: string[] = [];
  for (const file of expected) if (!entries.includes(file)) problems.push(`${name}/${file} is missing`);
  for (const entry of entries) {
    // A shard file and the WAL, index and journal SQLite keeps beside it.
    const base = entry.replace(/-(wal|shm|journal)$/, '');
    if (!expected.has(base)) problems.push(`${name}/${entry} is not a file of this ${layout.shards}-shard layout`);
  }
  return problems;
}

/** A new generation folder holding an empty shard file per shard (replacing any half-built one). */
export function createGeneration(dir: string, layout: Layout): string[] {
  const folder = generationDir(dir, layout.generation);
  rmSync(folder, { recursive: true, force: true });
  mkdirSync(folder, { recursive: true });
  const files = shardFiles(dir, layout);
  for (const file of files) createShardFile(file);
  return files;
}
