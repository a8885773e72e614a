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
 * True if every file in `dir` is a shard file holding no message (as createShardFile()
 * leaves one), and there is at least one: what a first start that stopped before it
 * wrote its layout leaves behind. False for anything else, a file it cannot read included.
 */
export function onlyEmptyShardFiles(dir: string, names: readonly string[]): boolean {
  // No write-ahead log either: createShardFile() closes each file, which removes it.
  if (names.length === 0 || names.some((name) => !/^shard-\d+\.db$/.test(name))) return false;
  for (const name of names) {
    try {
      // Not read-only: a read-only connection leaves a -wal and -shm behind; this one, the
      // last to close, removes them, and only reads.
      const db = new Database(`${dir}/${name}`, { fileMustExist: true });
      try {
        if (missingShardObjects(db).length > 0 || db.prepare('SELECT 1 FROM messages LIMIT 1').get() !== undefined) return false;
      } finally {
        db.close();
      }
    } catch {
      return false;
    }
  }
  return true;
}
