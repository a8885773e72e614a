import { StoreError, errorMessage } from '../errors.js';

/** What the store was doing when SQLite failed: it picks the code of anything but damage or a full disk. */
export type StoreActivity = 'read' | 'write';

/** SQLite's own (extended) result code of a thrown error, if it has one. */
export function sqliteCode(cause: unknown): string {
  const code = (cause as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}

/** SQLITE_CORRUPT (and its extended codes) or SQLITE_NOTADB: the file's bytes are not what SQLite wrote. */
export function isDamage(cause: unknown): boolean {
  const code = sqliteCode(cause);
  return code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB';
}

export function isFull(cause: unknown): boolean {
  return sqliteCode(cause) === 'SQLITE_FULL';
}

/**
 * A SQLite failure as the StoreError that says what it means: damage, a full disk (or
 * store cap), or else a failed read or write. `where` names the file (and mailbox).
 */
export function storeErrorFrom(cause: unknown, activity: StoreActivity, where: string): StoreError {
  if (cause instanceof StoreError) return cause;
  const detail = errorMessage(cause);
  if (isDamage(cause)) return new StoreError('PH_ERR_STORE_DAMAGED', `${where} is damaged: ${detail}`, { cause });
  if (isFull(cause)) return new StoreError('PH_ERR_STORE_FULL', `${where}: no room to write: ${detail}`, { cause });
  if (activity === 'read') return new StoreError('PH_ERR_STORE_READ_FAILED', `${where}: read failed: ${detail}`, { cause });
  return new StoreError('PH_ERR_STORE_WRITE_FAILED', `${where}: write failed: ${detail}`, { cause });
}

/**
 * A batch's transaction failed: at its COMMIT (`atCommit`: the batch's work had run) an
 * error other than a full disk leaves its outcome unknown. The WAL may hold the whole
 * transaction (a failed fsync comes after every frame was written), which SQLite takes
 * back in when the file is next opened; SQLITE_FULL comes before the commit frame.
 */
export function batchErrorFrom(cause: unknown, atCommit: boolean, where: string): StoreError {
  const error = storeErrorFrom(cause, 'write', where);
  if (!atCommit || error.code === 'PH_ERR_STORE_FULL') return error;
  return new StoreError('PH_ERR_STORE_OUTCOME_UNKNOWN', `${where}: the commit failed, and whether it took effect is unknown: ${errorMessage(cause)}`, { cause });
}
