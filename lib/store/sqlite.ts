import Database from 'better-sqlite3';
import { StoreError, errorMessage } from '../errors.js';
import { DiskGuard, type DiskSpaceOptions, type StoreSlack, sqliteSlack } from './disk-space.js';
import { quickCheck, recoveryAdvice } from './integrity.js';
import { refuseDamagedWal } from './wal-damage.js';
import { SCHEMA, missingShardObjects } from './schema.js';
import { batchErrorFrom, isDamage, isFull, storeErrorFrom } from './sqlite-errors.js';
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

export { SCHEMA } from './schema.js';

export interface SqliteStoreOptions extends StoreLimits {
  /** The database file. */
  readonly file: string;
  /**
   * Create the file (with its schema) when it is missing. Default true; a data directory
   * passes false, since its layout says which files must already be there.
   */
  readonly create?: boolean;
  /**
   * Check the file at open (PRAGMA quick_check, and the rows counted through the table
   * and through the index agree) and refuse it if it is damaged. Default false.
   */
  readonly verify?: boolean;
  /** The data directory the file belongs to, named in the way out of damage. */
  readonly dataDir?: string;
  /** Also survive power loss: fsync every commit (synchronous=FULL). Default false. */
  readonly fsync?: boolean;
  /**
   * Identifies the server run that owns the journal: replies journaled by an earlier run
   * can never be asked for again and are dropped on open.
   */
  readonly epoch?: number;
  /** Caps the file's size: past it COMPOSE fails as on a full disk. */
  readonly maxBytes?: number;
  /** Watch the disk: COMPOSE is refused below its watermark (see disk-space.ts). */
  readonly disk?: DiskSpaceOptions;
}

interface CountRow {
  recipient: string;
  n: number;
}

interface MessageRow {
  sender: unknown;
  body: unknown;
}

// Above maxBytes, pages SQLite may still use: deletes, the journal of a batch of READs
// and index splits must commit when COMPOSE is refused, or a full store could not drain.
const HEADROOM_FRACTION = 8;
const MIN_HEADROOM_BYTES = 256 * 1024;
// What a row costs the disk, for the watermark: the row itself, its index entry, and its
// copy in the WAL until a checkpoint.
const ROW_OVERHEAD_BYTES = 64;

/** A batch's key in the journal: its link above, its seq (u32) below; exact in a double up to link 2^21. */
function journalKey(link: number, seq: number): number {
  return link * 2 ** 32 + seq;
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
 * Failures say what they are (sqlite-errors.ts): PH_ERR_STORE_DAMAGED when the file's
 * bytes are not what SQLite wrote, PH_ERR_STORE_FULL when there is no room,
 * PH_ERR_STORE_READ_FAILED / _WRITE_FAILED otherwise. A READ that finds its mailbox's
 * count and rows disagree is damage too, never an empty mailbox.
 *
 * Memory stays bounded: bodies live on disk; the store keeps only a count per mailbox,
 * for at most maxMailboxes mailboxes.
 */
export class SqliteStore implements MailboxStore {
  readonly journal: BatchJournal;
  readonly #db: Database.Database;
  readonly #file: string;
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
  readonly #disk: DiskGuard | null;
  // Whether the last checkpoint wrote the whole WAL into the file (see StoreSlack).
  #walCheckpointed = true;
  readonly #usedPages: Database.Statement<[], number>;
  readonly #freePages: Database.Statement<[], number>;
  readonly #pageCount: Database.Statement<[], number>;
  #pageSize = 4096;
  readonly #insert: Database.Statement<[string, string, Uint8Array]>;
  readonly #takeOldest: Database.Statement<[string], MessageRow>;
  readonly #journalGet: Database.Statement<[number, number], { reply: Buffer }>;
  readonly #journalPut: Database.Statement<[number, number, Uint8Array]>;
  readonly #journalTrim: Database.Statement<[number, number, number]>;
  readonly #journalForget: Database.Statement<[number, number, number]>;
  readonly #transaction: (work: () => unknown) => unknown;

  constructor(options: SqliteStoreOptions) {
    this.#file = options.file;
    this.#limits = options;
    this.#epoch = options.epoch ?? 0;
    this.#maxBytes = options.maxBytes;
    // A watermark of 0 turns the guard off.
    this.#disk = options.disk === undefined || options.disk.minFreeBytes === 0 ? null : new DiskGuard(options.disk);
    let db: Database.Database | null = null;
    try {
      // Before SQLite opens the file: opening would drop what follows damage in the WAL.
      refuseDamagedWal(options.file, `; the server will not serve it. ${recoveryAdvice(options.dataDir)}`);
      db = new Database(options.file, { fileMustExist: options.create === false });
      this.#db = db;
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${options.fsync === true ? 'FULL' : 'NORMAL'}`);
      // A smaller page cache than SQLite's default is plenty: reads touch the head of
      // each mailbox only.
      db.pragma('cache_size = -1024');
      this.#prepareSchema(options.create !== false);
      this.#pageSize = db.pragma('page_size', { simple: true }) as number;
      if (options.maxBytes !== undefined) {
        const headroom = Math.max(MIN_HEADROOM_BYTES, Math.floor(options.maxBytes / HEADROOM_FRACTION));
        db.pragma(`max_page_count = ${Math.max(1, Math.floor((options.maxBytes + headroom) / this.#pageSize))}`);
      }
      this.#usedPages = db.prepare('SELECT (SELECT page_count FROM pragma_page_count) - (SELECT freelist_count FROM pragma_freelist_count)').pluck() as Database.Statement<[], number>;
      this.#freePages = db.prepare('SELECT freelist_count FROM pragma_freelist_count').pluck() as Database.Statement<[], number>;
      this.#pageCount = db.prepare('SELECT page_count FROM pragma_page_count').pluck() as Database.Statement<[], number>;
      this.#insert = db.prepare('INSERT INTO messages (recipient, sender, body) VALUES (?, ?, ?)');
      this.#takeOldest = db.prepare(
        'DELETE FROM messages WHERE seq = (SELECT seq FROM messages WHERE recipient = ? ORDER BY seq LIMIT 1) RETURNING sender, body',
      );
      // The journal's seq column holds the link in its high 32 bits and the batch's seq
      // in the low ones (journalKey): one key per batch of every acceptor thread's link.
      this.#journalGet = db.prepare('SELECT reply FROM journal WHERE epoch = ? AND seq = ?');
      this.#journalPut = db.prepare('INSERT OR REPLACE INTO journal (epoch, seq, reply) VALUES (?, ?, ?)');
      this.#journalTrim = db.prepare('DELETE FROM journal WHERE epoch = ? AND seq > ? AND seq <= ?');
      this.#journalForget = db.prepare('DELETE FROM journal WHERE epoch = ? AND seq >= ? AND seq < ?');
      this.#transaction = db.transaction((work: () => unknown) => work());
      const indexed = this.#loadCounts();
      if (options.verify === true) this.#verify(indexed, options.dataDir);
      this.#forgetEarlierRuns();
      if (this.#disk !== null) {
        // A start on a nearly full disk (after kill -9, say) reaches the file with what
        // waits in the WAL at once, while the reserve's room is there for it.
        this.#disk.lookNow(this.#diskSlack());
        if (this.#disk.tight) this.#checkpoint();
      }
    } catch (cause) {
      db?.close();
      if (cause instanceof StoreError) throw cause;
      if (isDamage(cause)) {
        throw new StoreError('PH_ERR_STORE_DAMAGED', `${options.file} is damaged (${errorMessage(cause)}). ${recoveryAdvice(options.dataDir)}`, { cause });
      }
      throw new StoreError('PH_ERR_STORE_OPEN_FAILED', `cannot open mailbox store ${options.file}: ${errorMessage(cause)}`, { cause });
    }
    const epoch = this.#epoch;
    this.journal = {
      replyFor: (link, seq) => {
        try {
          return this.#journalGet.get(epoch, journalKey(link, seq))?.reply ?? null;
        } catch (cause) {
          throw storeErrorFrom(cause, 'read', `${this.#file} (journal)`);
        }
      },
      record: (link, seq, reply, ackedThrough) => {
        // Trim first: the pages freed make room for this reply on a nearly full store.
        if (ackedThrough > 0) this.#journalTrim.run(epoch, journalKey(link, 0), journalKey(link, ackedThrough));
        this.#journalPut.run(epoch, journalKey(link, seq), reply);
      },
      forget: (link) => {
        try {
          this.#journalForget.run(epoch, journalKey(link, 0), journalKey(link + 1, 0));
        } catch (cause) {
          throw storeErrorFrom(cause, 'write', `${this.#file} (journal)`);
        }
      },
    };
  }

  batch<T>(work: () => T): T {
    this.#inBatch = true;
    let atCommit = false;
    try {
      const result = this.#transaction(() => {
        const done = work();
        atCommit = true;
        return done;
      }) as T;
      // Below the watermark, the WAL is checkpointed after every commit so the next one
      // reuses it from its start: it must not grow on a disk with no room to grow into.
      if (this.#disk?.tight === true) this.#checkpoint();
      return result;
    } catch (cause) {
      // Rolled back (a disk that is really full, damage, an I/O error): so are the counts.
      for (const [user, count] of this.#undo) this.#setCount(user, count);
      if (isFull(cause) || (cause instanceof StoreError && cause.code === 'PH_ERR_STORE_FULL')) this.#disk?.onFull();
      throw batchErrorFrom(cause, atCommit, this.#file);
    } finally {
      this.#inBatch = false;
      this.#undo.clear();
      this.#disk?.settled();
    }
  }

  enqueue(user: string, message: StoredMessage): EnqueueResult {
    const count = this.#counts.get(user) ?? 0;
    if (count >= this.#limits.maxMessagesPerUser) return MAILBOX_FULL;
    // Each mailbox's count is kept in memory: their number is what bounds it.
    if (count === 0 && this.#counts.size >= (this.#limits.maxMailboxes ?? Infinity)) return STORE_UNAVAILABLE;
    // Read once: a MessageSlot's body is a view made on each read.
    const { from, body } = message;
    if (!this.#fits(user.length + from.length + body.length + ROW_OVERHEAD_BYTES)) return STORE_UNAVAILABLE;
    try {
      this.#insert.run(user, from, body);
    } catch (cause) {
      throw storeErrorFrom(cause, 'write', `${this.#file} (mailbox ${user})`);
    }
    this.#changeCount(user, count, count + 1);
    return ENQUEUED;
  }

  dequeue(user: string): StoredMessage | null {
    const count = this.#counts.get(user);
    if (count === undefined) return null;
    let row: MessageRow | undefined;
    try {
      row = this.#takeOldest.get(user);
    } catch (cause) {
      throw storeErrorFrom(cause, 'read', `${this.#file} (mailbox ${user})`);
    }
    // The count says a message waits: no row, or a row that is not one, is damage.
    if (row === undefined || typeof row.sender !== 'string' || !(row.body instanceof Uint8Array)) {
      throw new StoreError('PH_ERR_STORE_DAMAGED', `${this.#file} (mailbox ${user}) is damaged: ${count} message(s) counted, but the oldest cannot be read`);
    }
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
    const pages = this.#pageCount.get() as number;
    return { messages, bytes: pages * this.#pageSize };
  }

  close(): void {
    if (!this.#db.open) return;
    // A clean close checkpoints the WAL into the main file, so the next open is quick.
    this.#db.close();
  }

  /** Whether a row of about `bytes` bytes still fits under maxBytes and the disk's watermark. */
  #fits(bytes: number): boolean {
    if (this.#maxBytes !== undefined) {
      const used = this.#usedPages.get() as number;
      // Room for the row, its index entry and a page split.
      if (used * this.#pageSize + 2 * bytes + 2 * this.#pageSize > this.#maxBytes) return false;
    }
    return this.#disk === null || this.#disk.allows(2 * bytes, () => this.#diskSlack());
  }

  #diskSlack(): StoreSlack {
    return { ...sqliteSlack(this.#file, this.#pageSize, this.#pageCount.get() as number, this.#freePages.get() as number), walCheckpointed: this.#walCheckpointed };
  }

  #checkpoint(): void {
    try {
      const [result] = this.#db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
      this.#walCheckpointed = result !== undefined && result.busy === 0 && result.log === result.checkpointed;
    } catch {
      // Nothing is lost: the pages stay in the WAL, and the next commit tries again.
      this.#walCheckpointed = false;
    }
  }

  #prepareSchema(create: boolean): void {
    const missing = missingShardObjects(this.#db);
    if (missing.length === 0) return;
    if (create) {
      this.#db.exec(SCHEMA);
      return;
    }
    throw new StoreError('PH_ERR_STORE_DAMAGED', `${this.#file} is not a pigeonhole shard file (it has no ${missing.join(', ')})`);
  }

  #verify(indexed: number, dataDir: string | undefined): void {
    const problems = quickCheck(this.#db, indexed);
    if (problems.length === 0) return;
    throw new StoreError('PH_ERR_STORE_DAMAGED', `${this.#file} is damaged (${problems.slice(0, 3).join('; ')}); the server will not serve it. ${recoveryAdvice(dataDir)}`);
  }

  /** Drops the journal of earlier runs; on a full disk that waits for the next start. */
  #forgetEarlierRuns(): void {
    try {
      this.#db.prepare('DELETE FROM journal WHERE epoch <> ?').run(this.#epoch);
    } catch (cause) {
      // An earlier run's replies are never asked for again: leaving them costs room only.
      if (!isFull(cause)) throw cause;
    }
  }

  #changeCount(user: string, from: number, to: number): void {
    if (this.#inBatch && !this.#undo.has(user)) this.#undo.set(user, from);
    this.#setCount(user, to);
  }

  #setCount(user: string, count: number): void {
    if (count <= 0) this.#counts.delete(user);
    else this.#counts.set(user, count);
  }

  /** Counts every mailbox (through the index); returns the total. */
  #loadCounts(): number {
    this.#counts.clear();
    let total = 0;
    const rows = this.#db.prepare('SELECT recipient, COUNT(*) AS n FROM messages GROUP BY recipient').all() as CountRow[];
    for (const row of rows) {
      this.#counts.set(row.recipient, row.n);
      total += row.n;
    }
    return total;
  }
}
