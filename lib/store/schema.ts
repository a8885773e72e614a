import Database from 'better-sqlite3';

/** One shard file's tables: the mailboxes (one row per message) and the batch journal. */
export const SCHEMA = `
  CREATE TABLE IF NOT EXISTS messages (
    seq       INTEGER PRIMARY KEY,  -- rowid: always above every row present, so FIFO order
    recipient TEXT NOT NULL,
    sender    TEXT NOT NULL,
    body      BLOB NOT NULL
  );
  CREATE INDEX IF NOT EXISTS messages_by_recipient ON messages (recipient, seq);
  CREATE TABLE IF NOT EXISTS journal (
    epoch INTEGER NOT NULL,
    seq   INTEGER NOT NULL,
    reply BLOB NOT NULL,
    PRIMARY KEY (epoch, seq)
  ) WITHOUT ROWID;
`;

const SHARD_OBJECTS = ['messages', 'messages_by_recipient', 'journal'];

/** The objects of SCHEMA that `db` lacks (all of them for an empty file). */
export function missingShardObjects(db: Database.Database): string[] {
  const names = new Set((db.prepare('SELECT name FROM sqlite_schema').pluck().all() as string[]));
  return SHARD_OBJECTS.filter((name) => !names.has(name));
}

/** Creates an empty shard file (WAL mode, SCHEMA) and closes it. */
export function createShardFile(file: string): void {
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    db.exec(SCHEMA);
  } finally {
    db.close();
  }
}

/**
 * True if no file in `dir` can hold a message: only shard files (with their -wal, -shm
 * or -journal) whose messages table is empty or not there yet, down to none at all.
 * That is what a first start leaves that stopped before it wrote its layout, wherever
 * it stopped (a full disk included). False for anything else, a file it cannot read
 * included.
 */
export function holdsNoMessage(dir: string, names: readonly string[]): boolean {
  if (names.some((name) => !/^shard-\d+\.db(-wal|-shm|-journal)?$/.test(name))) return false;
  for (const name of names.filter((each) => each.endsWith('.db'))) {
    try {
      // Not read-only: a read-only connection leaves a -wal and -shm behind; this one
      // (which reads what a -wal or -journal holds too), the last to close, removes them.
      const db = new Database(`${dir}/${name}`, { fileMustExist: true });
      try {
        if (!missingShardObjects(db).includes('messages') && db.prepare('SELECT 1 FROM messages LIMIT 1').get() !== undefined) return false;
      } finally {
        db.close();
      }
    } catch {
      return false;
    }
  }
  return true;
}
