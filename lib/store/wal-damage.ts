import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { StoreError } from '../errors.js';

/**
 * Finds damage in a shard file's write-ahead log that SQLite would take for a torn write.
 *
 * SQLite replays its WAL frame by frame and stops at the first frame whose checksum or
 * salt does not match: after a crash that is the half-written end of the log, and
 * dropping it is right. But a frame damaged in the middle of the log looks the same to
 * SQLite, and it silently drops every transaction committed after it, acknowledged
 * messages among them, then checkpoints the shortened log away for good. This reads the
 * log first: frames that still verify after the first bad one, under the log's own salts,
 * were written after it. When they hold a committed transaction followed by another, the
 * bad frame is damage, not an end.
 *
 * Not the last transaction alone: after a power loss the end of the log may reach the
 * disk before its middle, so the last transaction, unfinished when the power went (and
 * never acknowledged, with fsync), can verify behind a frame that did not make it. Power
 * lost without fsync can leave several committed transactions behind such a hole: those
 * are the recent acknowledged messages that setting may lose, and this finds them too.
 *
 * A log whose header does not verify is left to SQLite, which then ignores the whole log:
 * that is also what a power loss while a new log was started can leave, with the old,
 * already checkpointed frames behind it.
 * Format: https://www.sqlite.org/fileformat2.html#the_write_ahead_log
 */
const HEADER_BYTES = 32;
const FRAME_HEADER_BYTES = 24;
const MAGIC = 0x377f0682;

export interface WalDamage {
  /** The log's file. */
  readonly file: string;
  /** The first frame (from 1) that does not verify. */
  readonly frame: number;
  /** Whole frames in the file. */
  readonly frames: number;
  /** Transactions committed after the bad frame whose frames verify (at least 2): SQLite would drop them. */
  readonly commitsAfter: number;
}

/** The damage in `dbFile`'s write-ahead log (`dbFile-wal`), or null when it has none SQLite would not see. */
export function findWalDamage(dbFile: string): WalDamage | null {
  const file = `${dbFile}-wal`;
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw cause;
  }
  try {
    return scan(fd, file);
  } finally {
    closeSync(fd);
  }
}

/** Throws PH_ERR_STORE_DAMAGED, naming the log, when `dbFile`'s log is damaged; `then` ends the message. */
export function refuseDamagedWal(dbFile: string, then = ''): void {
  const damage = findWalDamage(dbFile);
  if (damage !== null) throw new StoreError('PH_ERR_STORE_DAMAGED', `${dbFile} is damaged: ${describeWalDamage(damage)}, which opening it would drop${then}`);
}

/** What an operator reads about the damage. */
export function describeWalDamage(damage: WalDamage): string {
  return `its write-ahead log ${damage.file} is damaged at frame ${damage.frame} of ${damage.frames}, with ${damage.commitsAfter} transaction(s) committed after it`;
}

function scan(fd: number, file: string): WalDamage | null {
  const header = Buffer.alloc(HEADER_BYTES);
  if (readSync(fd, header, 0, HEADER_BYTES, 0) < HEADER_BYTES) return null;
  const magic = header.readUInt32BE(0);
  if ((magic & ~1) !== MAGIC) return null;
  const sum = new Checksum(magic === MAGIC + 1);
  sum.add(header, 0, 24);
  if (sum.s0 !== header.readUInt32BE(24) || sum.s1 !== header.readUInt32BE(28)) return null;
  const pageSize = header.readUInt32BE(8);
  if (pageSize < 512 || pageSize > 65_536 || (pageSize & (pageSize - 1)) !== 0) return null;
  const salt1 = header.readUInt32BE(16);
  const salt2 = header.readUInt32BE(20);

  const frameBytes = FRAME_HEADER_BYTES + pageSize;
  const frames = Math.floor((fstatSync(fd).size - HEADER_BYTES) / frameBytes);
  const frame = Buffer.alloc(frameBytes);
  // Each frame's checksum goes on from the one stored in the frame before it.
  let seed0 = sum.s0;
  let seed1 = sum.s1;
  let firstBad = -1;
  let commitsAfter = 0;
  for (let i = 0; i < frames; i++) {
    readSync(fd, frame, 0, frameBytes, HEADER_BYTES + i * frameBytes);
    const stored0 = frame.readUInt32BE(16);
    const stored1 = frame.readUInt32BE(20);
    let verifies = frame.readUInt32BE(8) === salt1 && frame.readUInt32BE(12) === salt2;
    if (verifies) {
      sum.reset(seed0, seed1);
      sum.add(frame, 0, 8);
      sum.add(frame, FRAME_HEADER_BYTES, frameBytes);
      verifies = sum.s0 === stored0 && sum.s1 === stored1;
    }
    if (!verifies && firstBad < 0) firstBad = i;
    // A commit frame (it carries the database's size) that verifies after a bad frame.
    else if (verifies && firstBad >= 0 && frame.readUInt32BE(4) !== 0) commitsAfter++;
    seed0 = stored0;
    seed1 = stored1;
  }
  return firstBad < 0 || commitsAfter < 2 ? null : { file, frame: firstBad + 1, frames, commitsAfter };
}

/** SQLite's WAL checksum: two running sums over 32-bit words in the byte order the magic names. */
class Checksum {
  s0 = 0;
  s1 = 0;
  readonly #bigEndian: boolean;

  constructor(bigEndian: boolean) {
    this.#bigEndian = bigEndian;
  }

  reset(s0: number, s1: number): void {
    this.s0 = s0;
    this.s1 = s1;
  }

  /** Adds bytes [start, end), a multiple of 8. */
  add(bytes: Buffer, start: number, end: number): void {
    let s0 = this.s0;
    let s1 = this.s1;
    const big = this.#bigEndian;
    for (let at = start; at < end; at += 8) {
      const x0 = big ? bytes.readUInt32BE(at) : bytes.readUInt32LE(at);
      const x1 = big ? bytes.readUInt32BE(at + 4) : bytes.readUInt32LE(at + 4);
      s0 = (s0 + x0 + s1) >>> 0;
      s1 = (s1 + x1 + s0) >>> 0;
    }
    this.s0 = s0;
    this.s1 = s1;
  }
}
