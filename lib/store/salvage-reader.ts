import Database from 'better-sqlite3';
import { errorMessage } from '../errors.js';
import { usernameProblem } from '../protocol/username.js';

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
  /** Messages known to have been stored (by the table or its index) that could not be read. */
  readonly lost: number;
  /**
   * Whether `lost` is exact: it is unless both the table and its index are damaged, in
   * which case a message whose row and index entry are both unreadable cannot be known.
   */
  readonly exact: boolean;
  /** What went wrong while reading, for the report. */
  readonly problems: string[];
}

const LF = 0x0a;
const MIN_SEQ = Number.MIN_SAFE_INTEGER;

/**
 * Reads every readable message of a shard file that may be damaged. SQLite stops a scan
 * at the first bad page, so the table is walked in seq order and, where a walk breaks,
 * probed at growing distances past the last good row until a page answers again; from
 * there it is walked backwards too, down to the damage, so rows between are not skipped.
 * Each row found is then read on its own: a damaged row costs itself, not its page. The
 * index (recipient, seq) is walked as well: it names the messages the table lost, which
 * is how the report can say exactly how many could not be saved.
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
    let index: { seqs: Set<number>; complete: boolean };
    let lookup: RowLookup;
    try {
      lookup = db.prepare('SELECT recipient, sender, body FROM messages WHERE seq = ?');
      table = walkTable(db, problems);
      index = walkIndex(db, problems);
    } catch (cause) {
      // Not even the schema could be read: nothing is known about this file's messages.
      return { saved: 0, lost: 0, exact: false, problems: [...problems, `cannot be read at all: ${errorMessage(cause)}`] };
    }
    const candidates = [...new Set([...table.seqs, ...index.seqs])].sort((a, b) => a - b);
    let saved = 0;
    let unreadable = 0;
    for (const seq of candidates) {
      const message = readRow(lookup, seq);
      if (message !== null) {
        // A failure to write the copy is the caller's, and stops the salvage.
        onMessage(message);
        saved++;
        continue;
      }
      // A row the table walk saw but that is no message and that a whole index does not
      // name was never one (a mangled rowid): not a lost message.
      if (index.complete && !index.seqs.has(seq)) continue;
      unreadable++;
    }
    if (unreadable > 0) problems.push(`${unreadable} message(s) could not be read`);
    return { saved, lost: unreadable, exact: table.complete || index.complete, problems };
  } finally {
    db.close();
  }
}

type RowLookup = Database.Statement<[number], { recipient: unknown; sender: unknown; body: unknown }>;

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
      if (complete) problems.push(`the messages table is damaged after seq ${after === MIN_SEQ ? 'its start' : after}: ${errorMessage(cause)}`);
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

/** The seqs the index (recipient, seq) names, and whether it could be read to its end. */
function walkIndex(db: Database.Database, problems: string[]): { seqs: Set<number>; complete: boolean } {
  const seqs = new Set<number>();
  try {
    const all = db.prepare('SELECT seq FROM messages INDEXED BY messages_by_recipient ORDER BY recipient, seq').pluck();
    for (const seq of all.iterate() as IterableIterator<number>) seqs.add(seq);
    return { seqs, complete: true };
  } catch (cause) {
    problems.push(`the index of mailboxes is damaged: ${errorMessage(cause)}`);
    return { seqs, complete: false };
  }
}
