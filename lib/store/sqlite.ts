import Database from 'better-sqlite3';
import { StoreError, errorMessage } from '../errors.js';
import {
  ENQUEUED,
  MAILBOX_FULL,
  STORE_UNAVAILABLE,
  type BatchJournal,
  type EnqueueResult,
  type MailboxStore,
  type StoreLimits,
  type StoreStats,
  type StoredMessage,
} from './store.js';

export interface SqliteStoreOptions extends StoreLimits {
  /** The database file; created with its schema when missing. */
  readonly file: string;
  /** Also survive power loss: fsync every commit (synchronous=FULL). Default false. */
  readonly fsync?: boolean;
  /**
   * Identifies the server run that owns the journal: replies journaled by an earlier run
   * can never be asked for again and are dropped on open.
   */
  readonly epoch?: number;
  /** Caps the file's size (PRAGMA max_page_count); writes past it fail as on a full disk. */
  readonly maxBytes?: number;
}

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

interface CountRow {
  recipient: string;
  n: number;
}

interface MessageRow {
  sender: string;
  body: Buffer;
}

/**
 * One shard's mailboxes in one SQLite file (WAL mode), through better-sqlite3. Its
 * synchronous API suits a shard: the shard's thread is the file's only writer, and a
 * whole batch is one transaction (group commit) that is committed before any of its
 * replies leave the shard.
 *
 * Durability: with the default synchronous=NORMAL a committed transaction is in the WAL
 * and survives the process being killed at any moment; `fsync: true` (synchronous=FULL)
 * also survives power loss.
 *
 * Memory stays bounded: bodies live on disk; the store keeps only a count per mailbox.
 */
export class SqliteStore implements MailboxStore {
  readonly journal: BatchJournal;
  readonly #db: Database.Database;
  readonly #limits: StoreLimits;
  readonly #epoch: number;
  readonly #counts = new Map<string, number>();
  // Each mailbox's count before the running batch first changed it, to put back if the
  // batch rolls back (rescanning the table instead takes seconds at millions of rows).
  readonly #undo = new Map<string, number>();
  #inBatch = false;
  // With maxBytes: bytes that may still be written, checked before each insert so a
  // message that does not fit fails alone instead of rolling back its whole batch.
  readonly #maxBytes: number | undefined;
  readonly #usedPages: Database.Statement<[], { used: number }> | undefined;
  #pageSize = 4096;
  readonly #insert: Database.Statement<[string, string, Uint8Array]>;
  readonly #takeOldest: Database.Statement<[string], MessageRow>;
  readonly #journalGet: Database.Statement<[number, number], { reply: Buffer }>;
  readonly #journalPut: Database.Statement<[number, number, Uint8Array]>;
  readonly #journalTrim: Database.Statement<[number, number]>;
  readonly #transaction: (work: () => unknown) => unknown;

  constructor(options: SqliteStoreOptions) {
    this.#limits = options;
    this.#epoch = options.epoch ?? 0;
    try {
      this.#db = new Database(options.file);
      this.#db.pragma('journal_mode = WAL');
      this.#db.pragma(`synchronous = ${options.fsync === true ? 'FULL' : 'NORMAL'}`);
      // A smaller page cache than SQLite's 2 MB default per connection is plenty: reads
      // touch the head of each mailbox only.
      this.#db.pragma('cache_size = -1024');
      this.#db.exec(SCHEMA);
      this.#maxBytes = options.maxBytes;
      this.#pageSize = this.#db.pragma('page_size', { simple: true }) as number;
      if (options.maxBytes !== undefined) {
        this.#db.pragma(`max_page_count = ${Math.max(1, Math.floor(options.maxBytes / this.#pageSize))}`);
        this.#usedPages = this.#db.prepare('SELECT (SELECT page_count FROM pragma_page_count) - (SELECT freelist_count FROM pragma_freelist_count) AS used');
      }
      this.#insert = this.#db.prepare('INSERT INTO messages (recipient, sender, body) VALUES (?, ?, ?)');
      this.#takeOldest = this.#db.prepare(
        'DELETE FROM messages WHERE seq = (SELECT seq FROM messages WHERE recipient = ? ORDER BY seq LIMIT 1) RETURNING sender, body',
      );
      this.#journalGet = this.#db.prepare('SELECT reply FROM journal WHERE epoch = ? AND seq = ?');
      this.#journalPut = this.#db.prepare('INSERT OR REPLACE INTO journal (epoch, seq, reply) VALUES (?, ?, ?)');
      this.#journalTrim = this.#db.prepare('DELETE FROM journal WHERE epoch = ? AND seq <= ?');
      this.#db.prepare('DELETE FROM journal WHERE epoch <> ?').run(this.#epoch);
      this.#transaction = this.#db.transaction((work: () => unknown) => work());
      this.#loadCounts();
    } catch (cause) {
      throw new StoreError('PH_ERR_STORE_OPEN_FAILED', `cannot open mailbox store ${options.file}: ${errorMessage(cause)}`, { cause });
    }
    const epoch = this.#epoch;
    this.journal = {
      replyFor: (seq) => this.#journalGet.get(epoch, seq)?.reply ?? null,
      record: (seq, reply, ackedThrough) => {
        // Trim first: the pages freed make room for this reply on a nearly full store.
        if (ackedThrough > 0) this.#journalTrim.run(epoch, ackedThrough);
        this.#journalPut.run(epoch, seq, reply);
      },
    };
  }

  batch<T>(work: () => T): T {
    this.#inBatch = true;
    try {
      return this.#transaction(work) as T;
    } catch (cause) {
      // Rolled back (a disk that is really full, an I/O error): so are the counts.
      for (const [user, count] of this.#undo) this.#setCount(user, count);
      if (cause instanceof StoreError) throw cause;
      throw new StoreError('PH_ERR_STORE_WRITE_FAILED', `mailbox store write failed: ${errorMessage(cause)}`, { cause });
    } finally {
      this.#inBatch = false;
      this.#undo.clear();
    }
  }

  enqueue(user: string, message: StoredMessage): EnqueueResult {
    const count = this.#counts.get(user) ?? 0;
    if (count >= this.#limits.maxMessagesPerUser) return MAILBOX_FULL;
    if (!this.#fits(user.length + message.from.length + message.body.length)) return STORE_UNAVAILABLE;
    this.#insert.run(user, message.from, message.body);
    this.#changeCount(user, count, count + 1);
    return ENQUEUED;
  }

  dequeue(user: string): StoredMessage | null {
    const count = this.#counts.get(user);
    if (count === undefined) return null;
    const row = this.#takeOldest.get(user);
    if (row === undefined) return null;
    this.#changeCount(user, count, count - 1);
    return { from: row.sender, body: row.body };
  }

  count(user: string): number {
    return this.#counts.get(user) ?? 0;
  }

  /**
   * Messages from the per-mailbox counts (no query); bytes are the database file's pages,
   * as maxBytes counts them (the WAL beside it not included).
   */
  stats(): StoreStats {
    let messages = 0;
    for (const count of this.#counts.values()) messages += count;
    const pages = this.#db.pragma('page_count', { simple: true }) as number;
    return { messages, bytes: pages * this.#pageSize };
  }

  close(): void {
    if (!this.#db.open) return;
    // A clean close checkpoints the WAL into the main file, so the next open is quick.
    this.#db.close();
  }

  /** Whether a row of about `bytes` bytes still fits under maxBytes (always, without it). */
  #fits(bytes: number): boolean {
    if (this.#maxBytes === undefined || this.#usedPages === undefined) return true;
    const used = (this.#usedPages.get() as { used: number }).used * this.#pageSize;
    // Room for the row, its index entry and a page split.
    return used + 2 * bytes + 2 * this.#pageSize <= this.#maxBytes;
  }

  #changeCount(user: string, from: number, to: number): void {
    if (this.#inBatch && !this.#undo.has(user)) this.#undo.set(user, from);
    this.#setCount(user, to);
  }

  #setCount(user: string, count: number): void {
    if (count <= 0) this.#counts.delete(user);
    else this.#counts.set(user, count);
  }

  #loadCounts(): void {
    this.#counts.clear();
    const rows = this.#db.prepare('SELECT recipient, COUNT(*) AS n FROM messages GROUP BY recipient').all() as CountRow[];
    for (const row of rows) this.#counts.set(row.recipient, row.n);
  }
}
