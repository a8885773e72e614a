import { closeSync, existsSync, openSync, readdirSync, renameSync, rmSync, statSync, statfsSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';

/**
 * Keeping a full disk serviceable. SQLite needs room to give room back: a READ deletes
 * its row by appending pages to the WAL, and a database reopened after kill -9 must
 * build its -shm index. So two things stand between a flood of COMPOSEs and a disk on
 * which nothing can commit any more:
 *
 * - a watermark: COMPOSE is refused (MESSAGE FAILED) while the free space of the data
 *   directory's filesystem, plus the free pages inside the shard's own file, is below
 *   `minFreeBytes`. Reads go on, and while the disk is below the watermark every commit
 *   is followed by a WAL checkpoint, so the WAL is reused from its start instead of
 *   growing;
 * - a reserve file (`DATA/reserve`, `reserveBytes` of zeros): if the disk fills anyway
 *   (another program wrote to it, or the estimate was short) the first commit that
 *   fails for want of room deletes it, and the batch commits again without its
 *   COMPOSEs; a server that starts on a nearly full disk deletes it before opening its
 *   files. It is written again once the disk has room for it and the watermark.
 */
export interface DiskSpaceOptions {
  /** A directory on the filesystem to watch (the data directory). */
  readonly dir: string;
  /** COMPOSE is refused while less than this is free. */
  readonly minFreeBytes: number;
  /** Size of the reserve file kept in `dir`. */
  readonly reserveBytes: number;
}

const MiB = 1024 * 1024;
export const RESERVE_FILE = 'reserve';

/** Default watermark: a twentieth of the filesystem, from 1 MiB to 64 MiB. */
export function defaultMinFreeBytes(filesystemBytes: number): number {
  return clamp(Math.floor(filesystemBytes / 20), MiB, 64 * MiB);
}

/**
 * The reserve kept for a watermark: a quarter of it, from 256 KiB to 8 MiB (none when
 * the watermark is 0, which turns the guard off). It has to hold what reads need once
 * the disk is really full: each shard's -shm index (32 KiB) and the WAL pages of a few
 * batches of deletes, checkpointed after each.
 */
export function reserveBytesFor(minFreeBytes: number): number {
  if (minFreeBytes === 0) return 0;
  return clamp(Math.floor(minFreeBytes / 4), 256 * 1024, 8 * MiB);
}

export function freeBytes(dir: string): number {
  const stats = statfsSync(dir);
  return stats.bavail * stats.bsize;
}

export function filesystemBytes(dir: string): number {
  const stats = statfsSync(dir);
  return stats.blocks * stats.bsize;
}

export function reserveFile(dir: string): string {
  return join(dir, RESERVE_FILE);
}

/** Deletes the reserve file; true if there was one to delete. */
export function releaseReserve(dir: string): boolean {
  try {
    unlinkSync(reserveFile(dir));
    return true;
  } catch {
    return false;
  }
}

/**
 * Writes the reserve file (zeros, so the filesystem really allocates it) unless a
 * complete one is there; false if the disk had no room for it. Written under a name of
 * its own and renamed into place, so a reserve is never half there and shards taking it
 * at once do not trip over each other.
 */
export function takeReserve(dir: string, bytes: number): boolean {
  const file = reserveFile(dir);
  if (reserveSize(dir) >= bytes) return true;
  const temporary = `${file}.${process.pid}-${threadId}.tmp`;
  let fd: number | null = null;
  try {
    fd = openSync(temporary, 'w');
    const zeros = Buffer.alloc(Math.min(bytes, MiB));
    for (let written = 0; written < bytes; ) written += writeSync(fd, zeros, 0, Math.min(zeros.length, bytes - written));
    closeSync(fd);
    fd = null;
    renameSync(temporary, file);
    return true;
  } catch {
    if (fd !== null) closeSync(fd);
    rmSync(temporary, { force: true });
    return false;
  }
}

export function reserveSize(dir: string): number {
  try {
    return statSync(reserveFile(dir)).size;
  } catch {
    return 0;
  }
}

/** Removes reserve files a process died while writing. */
export function removeStaleReserves(dir: string): void {
  const prefix = `${RESERVE_FILE}.`;
  for (const entry of readdirSync(dir)) {
    if (entry.startsWith(prefix) && entry.endsWith('.tmp')) rmSync(join(dir, entry), { force: true });
  }
}

// When the disk is tight, look at it at most this often: between looks a COMPOSE that
// does not fit the last figure is refused without a system call.
const MIN_LOOK_MS = 100;

/**
 * One shard's view of the disk, asked before each COMPOSE. It costs a subtraction: the
 * filesystem is looked at (statfs) only once the bytes written since the last look use
 * up what that look allowed, and never more than every MIN_LOOK_MS while the disk is
 * tight.
 */
export class DiskGuard {
  readonly #options: DiskSpaceOptions;
  // Bytes COMPOSEs may still write before the next look.
  #budget = 0;
  #lookedAt = -Infinity;
  // The last look found less room than #maxBudget: near the watermark, or below it.
  #short = false;
  // Bytes allowed in the running batch: not on disk yet, so no look can see them.
  #uncommitted = 0;
  // The most a look allows before the next: other programs may fill the disk meanwhile.
  readonly #maxBudget: number;

  constructor(options: DiskSpaceOptions) {
    this.#options = options;
    this.#maxBudget = clamp(Math.floor(options.minFreeBytes / 4), 256 * 1024, 64 * MiB);
  }

  /**
   * True while the disk was near or below the watermark at the last look. The store then
   * checkpoints after every commit: what waits in the WAL reaches the file while there
   * is still room for it, and the WAL is reused from its start instead of growing, so
   * reads keep committing even if something else fills the disk.
   */
  get tight(): boolean {
    return this.#short;
  }

  /**
   * Whether a COMPOSE that writes about `bytes` may go ahead. `slack()` is what the
   * store's own files change in the figure statfs gives (see StoreSlack).
   */
  allows(bytes: number, slack: () => StoreSlack): boolean {
    this.#uncommitted += bytes;
    this.#budget -= bytes;
    if (this.#budget >= 0) return true;
    const now = performance.now();
    // Looks again, unless it was short of room at the last look and the next look is not yet due.
    if (!this.#short || now - this.#lookedAt >= MIN_LOOK_MS) {
      this.#look(now, slack());
      if (this.#budget >= 0) return true;
    }
    // Refused: the bytes counted above are taken back.
    this.#uncommitted -= bytes;
    this.#budget += bytes;
    return false;
  }

  /** Looks at the disk now (when a store opens, say), whatever the last look allowed. */
  lookNow(slack: StoreSlack): void {
    this.#look(performance.now(), slack);
  }

  /** The batch is over (committed or rolled back): its bytes are on disk, or never will be. */
  settled(): void {
    this.#uncommitted = 0;
  }

  /**
   * A write failed for want of room: give the reserve back so the batch's reads can
   * commit; COMPOSE stays refused until a look finds room again. True if a reserve was
   * released (so trying again is worth it).
   */
  onFull(): boolean {
    this.#budget = 0;
    this.#lookedAt = performance.now();
    this.#short = true;
    return releaseReserve(this.#options.dir);
  }

  #look(now: number, slack: StoreSlack): void {
    const { dir, minFreeBytes, reserveBytes } = this.#options;
    this.#lookedAt = now;
    let free: number;
    try {
      free = freeBytes(dir);
    } catch {
      // The directory cannot be looked at: let the store's own errors speak.
      this.#budget = this.#maxBudget;
      return;
    }
    let missing = existsSync(reserveFile(dir)) ? 0 : reserveBytes;
    if (missing > 0 && free >= minFreeBytes + 2 * reserveBytes && takeReserve(dir, reserveBytes)) {
      free -= reserveBytes;
      missing = 0;
    }
    // A missing reserve counts as taken: COMPOSEs must not eat the room it gave back.
    const available = free - missing;
    const room = available + slack.file - this.#uncommitted - minFreeBytes;
    // Room left once the WAL has grown as it does between checkpoints. Short of that,
    // the store checkpoints after every commit and the WAL starts over each time, so
    // its growth is no longer to come, as long as those checkpoints finish. (A batch
    // bigger than the WAL so far still grows it by its pages; allows() counts each
    // COMPOSE twice, so the watermark holds to within about a batch's pages.)
    const roomWithWal = room - slack.walGrowth;
    this.#short = roomWithWal < this.#maxBudget;
    this.#budget = Math.min(this.#maxBudget, this.#short && slack.walCheckpointed ? room : roomWithWal);
  }
}

// SQLite's default wal_autocheckpoint (pages), and what each page costs in the WAL: the
// WAL grows to about this many frames before a checkpoint lets it start over.
const WAL_CHECKPOINT_PAGES = 1000;
const WAL_FRAME_HEADER_BYTES = 24;

/** How a store's own files change the disk's free space as statfs reports it. */
export interface StoreSlack {
  /**
   * Room inside the file, less its growth still to come: plus the free pages (new rows
   * reuse them); minus pages of the database beyond the file's end, which wait in the
   * WAL until a checkpoint writes them into the file.
   */
  readonly file: number;
  /** The WAL's own growth still to come, up to the size it reaches between checkpoints. */
  readonly walGrowth: number;
  /**
   * The store's last checkpoint wrote the whole WAL into the file. While the disk is
   * tight the store checkpoints after every commit, so its WAL starts over instead of
   * growing; a checkpoint that could not finish leaves the WAL to grow.
   */
  readonly walCheckpointed: boolean;
}

/** A SQLite file's StoreSlack, as far as its files say (whether its checkpoints finish is the store's to say). */
export function sqliteSlack(file: string, pageSize: number, pageCount: number, freePages: number): Omit<StoreSlack, 'walCheckpointed'> {
  const pendingFile = Math.max(0, pageCount * pageSize - fileSize(file));
  return {
    file: freePages * pageSize - pendingFile,
    walGrowth: Math.max(0, WAL_CHECKPOINT_PAGES * (pageSize + WAL_FRAME_HEADER_BYTES) - fileSize(`${file}-wal`)),
  };
}

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

/** Data directory files that belong to the reserve (kept out of layout checks). */
export function isReserveFile(name: string): boolean {
  return name === RESERVE_FILE || (name.startsWith(`${RESERVE_FILE}.`) && name.endsWith('.tmp'));
}
