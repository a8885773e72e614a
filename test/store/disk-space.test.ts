import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { DiskGuard, type StoreSlack, defaultMinFreeBytes, freeBytes, releaseReserve, reserveBytesFor, reserveFile, takeReserve } from '../../lib/store/disk-space.js';

const dir = mkdtempSync(join(tmpdir(), 'pigeonhole-disk-space-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
const MiB = 1024 * 1024;

/** A store whose file frees (or will still take) `bytes`, and whose WAL will not grow. */
function inFile(bytes: number): StoreSlack {
  return { file: bytes, walGrowth: 0, walCheckpointed: true };
}

test('the watermark is a twentieth of the disk within [1 MiB, 64 MiB]; the reserve a quarter of it within [256 KiB, 8 MiB]', (t) => {
  t.is(defaultMinFreeBytes(20 * MiB), MiB);
  t.is(defaultMinFreeBytes(100 * MiB), 5 * MiB);
  t.is(defaultMinFreeBytes(1024 * 1024 * MiB), 64 * MiB);
  t.is(reserveBytesFor(MiB), 256 * 1024);
  t.is(reserveBytesFor(20 * MiB), 5 * MiB);
  t.is(reserveBytesFor(64 * MiB), 8 * MiB);
  t.is(reserveBytesFor(0), 0, 'no watermark, no reserve');
});

test('the reserve is written whole, kept, and released once', (t) => {
  const own = mkdtempSync(join(dir, 'reserve-'));
  t.true(takeReserve(own, 300_000));
  t.is(statSync(reserveFile(own)).size, 300_000);
  t.true(takeReserve(own, 300_000), 'already there');
  t.true(releaseReserve(own));
  t.false(existsSync(reserveFile(own)));
  t.false(releaseReserve(own), 'nothing left to release');
});

test('COMPOSE is allowed while the disk has room above the watermark, refused below it', (t) => {
  const free = freeBytes(dir);
  const roomy = new DiskGuard({ dir, minFreeBytes: 0, reserveBytes: 0 });
  t.true(roomy.allows(1000, () => inFile(0)));
  t.false(roomy.tight);
  const above = new DiskGuard({ dir, minFreeBytes: free + 10 * MiB, reserveBytes: 0 });
  t.false(above.allows(1000, () => inFile(0)), 'the disk has less free than the watermark');
  t.true(above.tight);
  // Free pages inside the store count as room: a drained store takes COMPOSEs again.
  const drained = new DiskGuard({ dir, minFreeBytes: free + 10 * MiB, reserveBytes: 0 });
  t.true(drained.allows(1000, () => inFile(20 * MiB)));
  // What the store's files will still grow by counts against it.
  const pending = new DiskGuard({ dir, minFreeBytes: 0, reserveBytes: 0 });
  t.false(pending.allows(1000, () => inFile(-(free + 10 * MiB))));
});

test("the WAL's growth to come counts until the disk is tight; then every commit is checkpointed and it counts no more", (t) => {
  // Whatever the disk has free, the store's files leave `room` above the watermark, and
  // the WAL would grow by 4 MiB more before a checkpoint.
  const slack =
    (room: number, walCheckpointed = true) =>
    (): StoreSlack => ({ file: room - freeBytes(dir), walGrowth: 4 * MiB, walCheckpointed });
  const roomy = new DiskGuard({ dir, minFreeBytes: 0, reserveBytes: 0 });
  t.true(roomy.allows(1000, slack(10 * MiB)));
  t.false(roomy.tight, 'room for the WAL to grow and more');
  // A small disk: 3 MiB of room, less than the WAL could take. Tight, and COMPOSE goes on.
  const small = new DiskGuard({ dir, minFreeBytes: 0, reserveBytes: 0 });
  t.true(small.allows(1000, slack(3 * MiB)));
  t.true(small.tight);
  // Unless the store's checkpoints do not finish: then its WAL grows, and counts.
  const stuck = new DiskGuard({ dir, minFreeBytes: 0, reserveBytes: 0 });
  t.false(stuck.allows(1000, slack(3 * MiB, false)));
  t.true(stuck.tight);
  // Tight, COMPOSE still stops at the watermark itself.
  const nearlyFull = new DiskGuard({ dir, minFreeBytes: 0, reserveBytes: 0 });
  t.false(nearlyFull.allows(200 * 1024, slack(100 * 1024)));
  t.true(nearlyFull.allows(50 * 1024, slack(100 * 1024)));
});

/** Runs `work` with performance.now() standing still until `work` moves it on (by the ms given). */
function withClock(work: (advance: (ms: number) => void) => void): void {
  const realNow = performance.now;
  let now = 1_000_000;
  performance.now = () => now;
  try {
    work((ms) => (now += ms));
  } finally {
    performance.now = realNow;
  }
}

test('a write that found the disk full releases the reserve and refuses COMPOSE until the next look', (t) => {
  const own = mkdtempSync(join(dir, 'full-'));
  takeReserve(own, 256 * 1024);
  const guard = new DiskGuard({ dir: own, minFreeBytes: 0, reserveBytes: 256 * 1024 });
  // The clock stands still: on a slow machine the next look could otherwise fall due
  // before allows() is asked.
  withClock(() => {
    t.true(guard.onFull(), 'the reserve was there to release');
    t.false(existsSync(reserveFile(own)));
    t.true(guard.tight);
    t.false(guard.allows(1, () => inFile(0)), 'refused until the next look is due');
  });
});

test('COMPOSEs refused between looks leave no bytes behind: the next look counts only those allowed', (t) => {
  // The clock stands still, so every refusal below is one "before the next look is due".
  withClock((advance) => refusalsBetweenLooks(t, () => advance(1_000)));
});

function refusalsBetweenLooks(t: ExecutionContext, nextLookDue: () => void): void {
  const minFreeBytes = 256 * MiB; // a budget per look of up to 64 MiB
  let freed = 0;
  // Whatever the disk has free, the guard sees 40 MiB of room above the watermark (plus what the store frees).
  const slack = (): StoreSlack => inFile(minFreeBytes - freeBytes(dir) + 40 * MiB + freed);
  const guard = new DiskGuard({ dir, minFreeBytes, reserveBytes: 0 });
  t.true(guard.allows(30 * MiB, slack), '30 of 40 MiB');
  t.true(guard.tight);
  for (let i = 0; i < 3; i++) t.false(guard.allows(20 * MiB, slack), 'no room for 20 more');
  // The store frees 20 MiB and the next look is due: 30 + 25 fit in 40 + 20.
  freed = 20 * MiB;
  nextLookDue();
  t.true(guard.allows(25 * MiB, slack));
}
