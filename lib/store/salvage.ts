import { copyFileSync, existsSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import Database from 'better-sqlite3';
import { StoreError } from '../errors.js';
import { shardIndex } from '../util/shard-hash.js';
import { FORMAT, type Layout, createGeneration, freeKeptName, keepSalvaged, layoutProblems, readLayout, shardFiles, writeLayout } from './layout.js';
import { readShardFile } from './salvage-reader.js';
import { describeWalDamage, findWalDamage } from './wal-damage.js';

export interface SalvagedFile {
  /** The source file, relative to the data directory. */
  readonly file: string;
  readonly saved: number;
  readonly lost: number;
  /** Whether `lost` is exact (see ShardFileContents); false for a missing file, or one whose WAL is damaged. */
  readonly exact: boolean;
  readonly problems: string[];
}

export interface SalvageReport {
  readonly saved: number;
  readonly lost: number;
  readonly exact: boolean;
  readonly files: SalvagedFile[];
  /** The new generation's folder, relative to the data directory. */
  readonly generation: string;
  /** Where the old generation was kept, relative to the data directory. */
  readonly keptAs: string;
}

const COMMIT_EVERY_ROWS = 50_000;
// A shard file's damaged write-ahead log is kept beside it under its name and this.
const DAMAGED_WAL_SUFFIX = '.damaged';

/**
 * Copies every readable message of the data directory's current generation, in order,
 * into a fresh generation with the same shard count, then makes that the layout (the
 * same atomic flip as a migration). The old generation is kept beside it, renamed
 * `salvaged-gen-N`, for the operator to remove. The caller holds the directory's lock.
 *
 * Shard files the layout names but that are missing count as read with nothing in
 * them, and make the count of lost messages inexact (their messages cannot be known);
 * so does a shard file whose WAL is damaged (the transactions after the damage).
 */
export function salvageDataDir(dir: string): SalvageReport {
  const found = readLayout(dir);
  if (found === null) throw new StoreError('PH_ERR_STORE_OPEN_FAILED', `${dir} has no pigeonhole.json: there is nothing to salvage`);
  const layout = keepSalvaged(dir, found);
  const next: Layout = { format: FORMAT, shards: layout.shards, generation: layout.generation + 1 };
  // Named now: the reports below say where what is kept will be.
  const keptAs = freeKeptName(dir, layout.generation);
  const outputs = createGeneration(dir, next).map((file) => {
    const db = new Database(file, { fileMustExist: true });
    return { db, insert: db.prepare('INSERT INTO messages (recipient, sender, body) VALUES (?, ?, ?)') };
  });
  const files: SalvagedFile[] = [];
  const missing = new Set(layoutProblems(dir, layout).filter((problem) => problem.endsWith(' is missing')));
  let pending = 0;
  const begin = (): void => outputs.forEach(({ db }) => db.exec('BEGIN'));
  const commit = (): void => outputs.forEach(({ db }) => db.exec('COMMIT'));
  try {
    begin();
    for (const file of shardFiles(dir, layout)) {
      const name = relative(dir, file);
      if (missing.has(`${name} is missing`) || !existsSync(file)) {
        files.push({ file: name, saved: 0, lost: 0, exact: false, problems: ['missing: its messages cannot be known'] });
        continue;
      }
      // SQLite reads the file only up to damage in its WAL, then checkpoints the rest of
      // the log away: a copy is kept for whoever may still get something out of it.
      const walDamage = findWalDamage(file);
      if (walDamage !== null) copyFileSync(walDamage.file, `${walDamage.file}${DAMAGED_WAL_SUFFIX}`);
      const contents = readShardFile(file, (message) => {
        // Placed by the name, as the server finds it: a misplaced mailbox lands right.
        const shard = shardIndex(Buffer.from(message.recipient, 'latin1'), next.shards);
        (outputs[shard] as (typeof outputs)[number]).insert.run(message.recipient, message.sender, message.body);
        if (++pending % COMMIT_EVERY_ROWS === 0) {
          commit();
          begin();
        }
      });
      if (walDamage === null) {
        files.push({ file: name, ...contents });
      } else {
        const lostInLog = `${describeWalDamage(walDamage)}: their messages could not be read and are not counted (the log is kept as ${join(keptAs, basename(walDamage.file))}${DAMAGED_WAL_SUFFIX})`;
        files.push({ file: name, ...contents, exact: false, problems: [...contents.problems, lostInLog] });
      }
    }
    commit();
  } finally {
    // Closing checkpoints each WAL into its file before the layout flips.
    for (const { db } of outputs) db.close();
  }
  // The request to keep the old generation flips with the layout: a crash before the
  // rename leaves it for the next start to finish, instead of removing it as replaced.
  const flipped: Layout = { ...next, keep: { generation: layout.generation, as: keptAs } };
  writeLayout(dir, flipped);
  keepSalvaged(dir, flipped);
  const saved = files.reduce((sum, file) => sum + file.saved, 0);
  const lost = files.reduce((sum, file) => sum + file.lost, 0);
  return { saved, lost, exact: files.every((file) => file.exact), files, generation: `gen-${next.generation}`, keptAs };
}
