import Database from 'better-sqlite3';
import { StoreError } from '../errors.js';
import { shardIndex } from '../util/shard-hash.js';
import { quickCheck } from './integrity.js';
import { type Layout, createGeneration, shardFiles } from './layout.js';
import { storeErrorFrom } from './sqlite-errors.js';
import { refuseDamagedWal } from './wal-damage.js';

const MIGRATION_BATCH_ROWS = 50_000;

interface Row {
  recipient: string;
  sender: string;
  body: Buffer;
}

/**
 * Copies every message of `from` into a fresh generation laid out as `to`; returns how
 * many. The caller flips pigeonhole.json once this returns. A damaged source file stops
 * it with PH_ERR_STORE_DAMAGED: a migration never drops what it cannot read.
 */
export function migrate(dir: string, from: Layout, to: Layout): number {
  const outputs = createGeneration(dir, to).map((file) => {
    const db = new Database(file, { fileMustExist: true });
    return { db, insert: db.prepare('INSERT INTO messages (recipient, sender, body) VALUES (?, ?, ?)') };
  });
  let moved = 0;
  try {
    const begin = (): void => outputs.forEach(({ db }) => db.exec('BEGIN'));
    const commit = (): void => outputs.forEach(({ db }) => db.exec('COMMIT'));
    begin();
    for (const file of shardFiles(dir, from)) {
      refuseDamagedWal(file);
      const source = new Database(file, { fileMustExist: true });
      try {
        // Damage must not travel into the new layout, where no check would see it.
        const indexed = source.prepare('SELECT count(*) FROM messages INDEXED BY messages_by_recipient').pluck().get() as number;
        const problems = quickCheck(source, indexed);
        if (problems.length > 0) throw new StoreError('PH_ERR_STORE_DAMAGED', `${file} is damaged (${problems.slice(0, 3).join('; ')})`);
        // In seq order: a user's messages all sit in one source file, so each mailbox
        // keeps its FIFO order in the target.
        const rows = source.prepare('SELECT recipient, sender, body FROM messages ORDER BY seq').iterate() as IterableIterator<Row>;
        for (const row of rows) {
          const shard = shardIndex(Buffer.from(row.recipient, 'latin1'), to.shards);
          (outputs[shard] as (typeof outputs)[number]).insert.run(row.recipient, row.sender, row.body);
          if (++moved % MIGRATION_BATCH_ROWS === 0) {
            commit();
            begin();
          }
        }
      } catch (cause) {
        throw storeErrorFrom(cause, 'read', file);
      } finally {
        source.close();
      }
    }
    commit();
  } finally {
    // Closing checkpoints each WAL into its file (and syncs it) before the layout flips.
    for (const { db } of outputs) db.close();
  }
  return moved;
}
