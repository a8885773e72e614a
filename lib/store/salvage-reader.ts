import Database from 'better-sqlite3';
import { errorMessage } from '../errors.js';
import { usernameProblem } from '../protocol/username.js';
import { pagesNamed, untrustedRows } from './page-reader.js';

/** One message read back whole from a shard file. */
export interface SalvagedMessage {
  readonly seq: number;
  readonly recipient: string;
  readonly sender: string;
  readonly body: Buffer;
}

export interface ShardFileContents {
  /** Messages read whole and well formed (each handed to the caller, in seq order). */
  readonly saved: number;
  /** Messages known to have been stored (by the table or its index) that could not be saved. */
  readonly lost: number;
  /**
   * Whether `lost` is exact: it is when the index could be read whole (it lists what was
   * stored), or else when nothing of the table may be damaged (no damaged leaf, and
   * integrity_check found nothing beyond the index). Otherwise a message whose row and
   * index entry are both unreadable cannot be known.
   */
  readonly exact: boolean;
  /** What went wrong while reading, for the report. */
  readonly problems: string[];
}

const LF = 0x0a;
const MIN_SEQ = Number.MIN_SAFE_INTEGER;

interface IndexWalk {
  /** seq -> recipient, as the index (recipient, seq) names them. */
  readonly entries: Map<number, string>;
  readonly complete: boolean;
}

/**
 * Reads every message of a shard file that may be damaged and can still be trusted.
 *
 * - SQLite stops a scan at the first bad page, so the table is walked in seq order and,
 *   where a walk breaks, probed at growing distances past the last good row until a page
 *   answers again; from there it is walked backwards too, down to the damage, so rows
 *   between are not skipped. Each row found is then read on its own.
 * - A row on a page that PRAGMA integrity_check names is not trusted even if SQLite reads
 *   it: a message whose bytes were overwritten can still look like one. Those rows are
 *   found by reading the page's cells from the file.
 * - The index (recipient, seq) is walked too. When it is whole it is the list of what was
 *   stored: only rows it names, in the mailbox it names, are saved (a row it does not
 *   name is an old deleted one reached through damage, or garbage), and the messages it
 *   names that could not be saved are counted exactly.
 */
export function readShardFile(file: string, onMessage: (message: SalvagedMessage) => void): ShardFileContents {
  const problems: string[] = [];
  let db: Database.Database;
  try {
    db = new Database(file, { fileMustExist: true });
  } catch (cause) {
    return { saved: 0, lost: 0, exact: false, problems: [`cannot open: ${errorMessage(cause)}`] };
  }
  try {
    let table: { seqs: number[]; complete: boolean };
    let index: IndexWalk;
    let untrusted: Untrusted;
    let lookup: RowLookup;
    try {
      // What waits in the WAL goes into the file first: its pages are read from there.
      tryTo(() => db.pragma('wal_checkpoint(TRUNCATE)'));
      lookup = db.prepare('SELECT recipient, sender, body FROM messages WHERE seq = ?');
      untrusted = findUntrusted(db, file, problems);
      table = walkTable(db, problems);
      index = walkIndex(db, problems);
    } catch (cause) {
      // Not even the schema could be read: nothing is known about this file's messages.
      return { saved: 0, lost: 0, exact: false, problems: [...problems, `cannot be read at all: ${errorMessage(cause)}`] };
    }
    const candidates = index.complete ? [...index.entries.keys()] : [...new Set([...table.seqs, ...index.entries.keys()])];
    candidates.sort((a, b) => a - b);
    let saved = 0;
    let lost = 0;
    for (const seq of candidates) {
      const named = index.entries.get(seq);
      const message = untrusted.rowids.has(seq) ? null : readRow(lookup, seq);
      if (message !== null && (named === undefined || named === message.recipient)) {
        // A failure to write the copy is the caller's, and stops the salvage.
        onMessage(message);
        saved++;
      } else {
        lost++;
      }
    }
    if (lost > 0) problems.push(`${lost} message(s) could not be read whole`);
    // Without the whole index, the table is the only list of what was stored: a walk that
    // met no error still misses the rows of a damaged page (or of a subtree behind one).
    return { saved, lost, exact: index.complete || (table.complete && !untrusted.tableDamaged), problems };
  } finally {
    db.close();
  }
}

type RowLookup = Database.Statement<[number], { recipient: unknown; sender: unknown; body: unknown }>;

function tryTo(work: () => unknown): void {
  try {
    work();
  } catch {
    // best effort: what it would have helped with is checked on its own
  }
}

interface Untrusted {
  /** Rows on table pages that integrity_check names, or whose cells are not message rows. */
  readonly rowids: Set<number>;
  /** Whether anything of the messages table (not only its index) may be damaged. */
  readonly tableDamaged: boolean;
}

function findUntrusted(db: Database.Database, file: string, problems: string[]): Untrusted {
  let named = new Set<number>();
  let report: string[] | null = null;
  try {
    report = (db.pragma('integrity_check(1000000)') as { integrity_check: string }[]).map((row) => row.integrity_check).filter((line) => line !== 'ok');
    named = pagesNamed(report);
  } catch (cause) {
    // It stops at some damage; the pages are read below either way.
    problems.push(`integrity_check stopped: ${errorMessage(cause)}`);
  }
  const { rowids, pages } = untrustedRows(file, db.pragma('page_size', { simple: true }) as number, named);
  if (pages.length > 0) problems.push(`damaged table page(s) ${pages.join(', ')}`);
  return { rowids, tableDamaged: pages.length > 0 || report === null || !onlyTheIndex(db, report) };
}

/**
 * Whether every line of an integrity_check report is about the index alone: it names the
 * index, or a page of the index's b-tree ("Tree N page ..." with N the index's root).
 */
function onlyTheIndex(db: Database.Database, report: readonly string[]): boolean {
  if (report.length === 0) return true;
  let root: number | undefined;
  try {
    root = db.prepare("SELECT rootpage FROM sqlite_schema WHERE name = 'messages_by_recipient'").pluck().get() as number | undefined;
  } catch {
    return false;
  }
  return report.every((line) => line.includes('messages_by_recipient') || (root !== undefined && new RegExp(`^Tree ${root} page `).test(line)));
}

function readRow(lookup: RowLookup, seq: number): SalvagedMessage | null {
  let row: { recipient: unknown; sender: unknown; body: unknown } | undefined;
  try {
    row = lookup.get(seq);
  } catch {
    return null;
  }
  if (row === undefined) return null;
  const { recipient, sender, body } = row;
  // Bytes that decode to something else than a message are damage, not mail.
  if (typeof recipient !== 'string' || usernameProblem(recipient) !== null) return null;
  if (typeof sender !== 'string' || usernameProblem(sender) !== null) return null;
  if (!Buffer.isBuffer(body) || body.includes(LF)) return null;
  return { seq, recipient, sender, body };
}

/** The seqs of the table's rows that can be reached, and whether all could. */
function walkTable(db: Database.Database, problems: string[]): { seqs: number[]; complete: boolean } {
  const forward = db.prepare('SELECT seq FROM messages NOT INDEXED WHERE seq > ? ORDER BY seq').pluck();
  const backward = db.prepare('SELECT seq FROM messages NOT INDEXED WHERE seq < ? ORDER BY seq DESC').pluck();
  const probe = db.prepare('SELECT seq FROM messages NOT INDEXED WHERE seq >= ? ORDER BY seq LIMIT 1').pluck();
  const seqs: number[] = [];
  let after = MIN_SEQ;
  let complete = true;
  for (;;) {
    try {
      for (const seq of forward.iterate(after) as IterableIterator<number>) {
        seqs.push(seq);
        after = seq;
      }
      break;
    } catch (cause) {
      if (complete) problems.push(`the messages table cannot be read past seq ${after === MIN_SEQ ? '(its start)' : after}: ${errorMessage(cause)}`);
      complete = false;
    }
    // Past the damage: the first seq a probe reaches, or the end.
    let resume: number | null = null;
    let end = Number.MAX_SAFE_INTEGER;
    for (let step = 1; after + step < Number.MAX_SAFE_INTEGER; step *= 2) {
      try {
        const found = probe.get(after + step) as number | undefined;
        if (found === undefined) end = after + step;
        else resume = found;
        break;
      } catch {
        // still inside the damage
      }
    }
    // Back down from there to the damage: rows between sit on good pages too.
    const between: number[] = [];
    try {
      for (const seq of backward.iterate(resume ?? end) as IterableIterator<number>) {
        if (seq <= after) break;
        between.push(seq);
      }
    } catch {
      // reached the damage
    }
    seqs.push(...between.reverse());
    if (resume === null) break;
    seqs.push(resume);
    after = resume;
  }
  return { seqs, complete };
}

/** What the index (recipient, seq) names, and whether it could be read to its end. */
function walkIndex(db: Database.Database, problems: string[]): IndexWalk {
  const entries = new Map<number, string>();
  try {
    const all = db.prepare('SELECT seq, recipient FROM messages INDEXED BY messages_by_recipient ORDER BY recipient, seq').raw();
    for (const [seq, recipient] of all.iterate() as IterableIterator<[number, string]>) entries.set(seq, recipient);
    return { entries, complete: true };
  } catch (cause) {
    problems.push(`the index of mailboxes cannot be read to its end: ${errorMessage(cause)}`);
    return { entries, complete: false };
  }
}
