import { relative } from 'node:path';
import Database from 'better-sqlite3';
import { errorMessage } from '../errors.js';
import { shardIndex } from '../util/shard-hash.js';
import { type Layout, hasForeignLayout, layoutProblems, layoutWayOut, readLayout, shardFiles } from './layout.js';
import { missingShardObjects } from './schema.js';
import { describeWalDamage, findWalDamage } from './wal-damage.js';

/**
 * Finding damage in shard files: a quick check each shard runs when it opens its file
 * (fast enough for every start), and the full check of `pigeonhole check`.
 */

/** What an operator should do about a damaged file of `dataDir`. */
export function recoveryAdvice(dataDir: string | undefined): string {
  const dir = dataDir ?? 'DIR';
  return `See the damage with 'pigeonhole check --data-dir ${dir}', then copy every readable message into a fresh generation with 'pigeonhole salvage --data-dir ${dir}'`;
}

/**
 * The start's check: PRAGMA quick_check (every page of every b-tree, every record's
 * shape; about 0.1 s per 500,000 stored messages) and the rows counted through the table
 * against `indexed`, those counted through the index. Returns the problems found.
 */
export function quickCheck(db: Database.Database, indexed: number): string[] {
  let problems: string[];
  try {
    problems = pragmaLines(db, 'quick_check(10)');
  } catch (cause) {
    return [errorMessage(cause)];
  }
  if (problems.length > 0) return problems;
  const rows = tableRows(db);
  return rows === indexed ? [] : [`the messages table holds ${rows} rows but its index counts ${indexed}`];
}

export interface FileReport {
  /** The file, relative to the data directory. */
  readonly file: string;
  /** Rows in its messages table, when they could be counted. */
  readonly messages: number | null;
  readonly problems: string[];
}

export interface CheckReport {
  readonly layout: Layout | null;
  /** No layout could be read, and writing one by hand is the way on (the problems say how). */
  readonly mendLayout: boolean;
  /** Problems of the directory itself: its layout and the files it should hold. */
  readonly problems: string[];
  readonly files: FileReport[];
  readonly ok: boolean;
}

/**
 * The full check of a data directory (the caller holds its lock): the layout, then each
 * shard file with PRAGMA integrity_check (which also compares the index with the table),
 * the types and names of every row, and that each mailbox sits in the file its name
 * hashes to.
 */
export function checkDataDir(dir: string): CheckReport {
  let layout: Layout | null;
  try {
    layout = readLayout(dir);
  } catch (cause) {
    return { layout: null, mendLayout: !hasForeignLayout(dir) && layoutWayOut(dir) !== '', problems: [errorMessage(cause)], files: [], ok: false };
  }
  if (layout === null) {
    const wayOut = layoutWayOut(dir);
    return { layout, mendLayout: wayOut !== '', problems: [`no pigeonhole.json: not a data directory, or one that was never used.${wayOut}`], files: [], ok: false };
  }
  const problems = layoutProblems(dir, layout);
  const files = shardFiles(dir, layout).map((file, shardId) => checkShardFile(file, shardId, layout.shards, relative(dir, file)));
  return { layout, mendLayout: false, problems, files, ok: problems.length === 0 && files.every((report) => report.problems.length === 0) };
}

function checkShardFile(file: string, shardId: number, shards: number, name: string): FileReport {
  let db: Database.Database;
  try {
    // Not opened at all: SQLite would drop what follows the damage, and check changes nothing.
    const damage = findWalDamage(file);
    if (damage !== null) return { file: name, messages: null, problems: [`${describeWalDamage(damage)}, which opening it would drop: not opened, so that the log is kept`] };
    db = new Database(file, { fileMustExist: true });
  } catch (cause) {
    return { file: name, messages: null, problems: [`cannot open: ${errorMessage(cause)}`] };
  }
  const problems: string[] = [];
  let messages: number | null = null;
  try {
    const missing = missingShardObjects(db);
    if (missing.length > 0) return { file: name, messages, problems: [`not a pigeonhole shard file: it has no ${missing.join(', ')}`] };
    problems.push(...pragmaLines(db, 'integrity_check(100)'));
    messages = tableRows(db);
    const malformed = db
      .prepare(
        `SELECT count(*) FROM messages NOT INDEXED WHERE typeof(recipient) <> 'text' OR typeof(sender) <> 'text' OR typeof(body) <> 'blob'
           OR length(recipient) NOT BETWEEN 1 AND 256 OR length(sender) NOT BETWEEN 1 AND 256
           OR recipient GLOB '*[^!-~]*' OR sender GLOB '*[^!-~]*' OR instr(body, x'0a') > 0`,
      )
      .pluck()
      .get() as number;
    if (malformed > 0) problems.push(`${malformed} row(s) are not messages (wrong types, bad names, or a line break in the body)`);
    let elsewhere = 0;
    for (const row of db.prepare('SELECT recipient, count(*) AS n FROM messages GROUP BY recipient').iterate() as IterableIterator<{ recipient: unknown; n: number }>) {
      if (typeof row.recipient !== 'string' || shardIndex(Buffer.from(row.recipient, 'latin1'), shards) !== shardId) elsewhere += row.n;
    }
    if (elsewhere > 0) problems.push(`${elsewhere} message(s) belong to mailboxes of another shard: no READ would find them`);
  } catch (cause) {
    problems.push(errorMessage(cause));
  } finally {
    db.close();
  }
  return { file: name, messages, problems };
}

/** A check pragma's findings, without its "ok" and its header lines. */
function pragmaLines(db: Database.Database, pragma: string): string[] {
  const lines = (db.pragma(pragma) as Record<string, string>[]).flatMap((row) => String(Object.values(row)[0]).split('\n'));
  return lines.filter((line) => line !== 'ok' && !line.startsWith('*** in database'));
}

/** Rows of the messages table, counted through the table itself (not its index). */
function tableRows(db: Database.Database): number {
  return db.prepare('SELECT count(*) FROM messages NOT INDEXED').pluck().get() as number;
}
