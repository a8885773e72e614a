import test from 'ava';
import { StoreError } from '../../lib/errors.js';
import { isDamage, storeErrorFrom } from '../../lib/store/sqlite-errors.js';

const sqlite = (code: string): Error => Object.assign(new Error(`sqlite says ${code}`), { code });

test('damage, a full disk, a failed read and a failed write each get their own code', (t) => {
  t.is(storeErrorFrom(sqlite('SQLITE_CORRUPT'), 'read', 'f').code, 'PH_ERR_STORE_DAMAGED');
  t.is(storeErrorFrom(sqlite('SQLITE_CORRUPT_INDEX'), 'write', 'f').code, 'PH_ERR_STORE_DAMAGED');
  t.is(storeErrorFrom(sqlite('SQLITE_NOTADB'), 'read', 'f').code, 'PH_ERR_STORE_DAMAGED');
  t.is(storeErrorFrom(sqlite('SQLITE_FULL'), 'read', 'f').code, 'PH_ERR_STORE_FULL');
  t.is(storeErrorFrom(sqlite('SQLITE_IOERR_READ'), 'read', 'f').code, 'PH_ERR_STORE_READ_FAILED');
  t.is(storeErrorFrom(sqlite('SQLITE_IOERR_WRITE'), 'write', 'f').code, 'PH_ERR_STORE_WRITE_FAILED');
  t.true(isDamage(sqlite('SQLITE_CORRUPT_VTAB')));
  t.false(isDamage(sqlite('SQLITE_FULL')));
});

test('the error names where it happened and keeps its cause; a StoreError passes through', (t) => {
  const cause = sqlite('SQLITE_CORRUPT');
  const error = storeErrorFrom(cause, 'read', 'gen-1/shard-0.db (mailbox bob)');
  t.true(error instanceof StoreError);
  t.regex(error.message, /^gen-1\/shard-0\.db \(mailbox bob\) is damaged: sqlite says SQLITE_CORRUPT$/);
  t.is(error.cause, cause);
  const already = new StoreError('PH_ERR_STORE_FULL', 'x');
  t.is(storeErrorFrom(already, 'write', 'f'), already);
});
