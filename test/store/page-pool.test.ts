import test from 'ava';
import fc from 'fast-check';
import { MAX_PAGE_BYTES, PagePool, SLAB_BYTES } from '../../lib/store/page-pool.js';

/** Page `page`'s bytes, as a view. */
function view(pool: PagePool, page: number): Buffer {
  const start = pool.offsetOf(page);
  return pool.bufferOf(page).subarray(start, start + pool.bytesOf(page));
}

test('a chunk is rounded up to a page size, or is exactly as asked past the biggest page', (t) => {
  const pool = new PagePool();
  for (const [asked, got] of [
    [1, 256],
    [256, 256],
    [257, 512],
    [1000, 1024],
    [4096, 4096],
    [4097, 4097],
    [70_000, 70_000],
  ] as const) {
    t.is(PagePool.chunkBytes(asked), got);
    t.is(view(pool, pool.take(asked)).length, got);
  }
});

test('slabs are one size, whatever their pages', (t) => {
  const pool = new PagePool();
  const sizes = [256, 512, 1024, 2048, 4096];
  const slabs = new Set(sizes.map((bytes) => pool.bufferOf(pool.take(bytes))));
  t.is(slabs.size, sizes.length);
  for (const slab of slabs) t.is(slab.byteLength, SLAB_BYTES);
});

test('pages of a size come from one slab until it is full, and a page given back is the next one taken', (t) => {
  const pool = new PagePool();
  const pages = Array.from({ length: SLAB_BYTES / 4096 }, () => pool.take(4096));
  t.is(pool.slabs, 1);
  t.is(new Set(pages.map((page) => pool.bufferOf(page))).size, 1);
  t.deepEqual(
    pages.map((page) => pool.offsetOf(page)),
    pages.map((_, i) => i * 4096),
  );
  pool.take(4096);
  t.is(pool.slabs, 2);
  const returned = pages[10] as number;
  const where = view(pool, returned);
  pool.give(returned);
  const again = view(pool, pool.take(4096));
  t.is(again.buffer, where.buffer);
  t.is(again.byteOffset, where.byteOffset);
});

test('a slab whose pages all came back is kept as a spare for pages of any size, up to four, unless it is the only one of its size with a free page', (t) => {
  const pool = new PagePool();
  const perSlab = SLAB_BYTES / 256;
  const pages = Array.from({ length: perSlab * 8 }, () => pool.take(256));
  const buffers = new Set(pages.map((page) => pool.bufferOf(page)));
  t.is(pool.slabs, 8);
  t.is(pool.freeBytes, 0);
  for (const page of pages) pool.give(page);
  // One stays open for 256-byte pages, four are spares, three are let go.
  t.is(pool.slabs, 5);
  t.is(pool.freeBytes, perSlab * 256 + 4 * SLAB_BYTES);
  // Taking and giving back one page over and over keeps that one open slab.
  for (let i = 0; i < 10; i++) pool.give(pool.take(256));
  t.is(pool.slabs, 5);
  // A page of another size takes a spare: no slab more, and the spare no longer counts as free.
  const slab = pool.bufferOf(pool.take(4096));
  t.is(slab.byteLength, SLAB_BYTES);
  t.true(buffers.has(slab), 'a slab that served 256-byte pages serves 4 KiB ones');
  t.is(pool.slabs, 5);
  t.is(pool.freeBytes, perSlab * 256 + 3 * SLAB_BYTES);
});

test('giving back a page counts that page as free and no more, even when its slab becomes a spare', (t) => {
  const pool = new PagePool();
  const perSlab = SLAB_BYTES / 256;
  const first = Array.from({ length: perSlab }, () => pool.take(256));
  const lone = pool.take(256);
  t.is(pool.slabs, 2);
  // The full slab has a free page again, so the second, once empty, is a spare.
  pool.give(first[0] as number);
  const before = pool.freeBytes;
  pool.give(lone);
  t.is(pool.slabs, 2, 'kept as a spare');
  t.is(pool.freeBytes - before, 256);
  // Taken for pages of another size, the spare no longer counts as free.
  pool.take(4096);
  t.is(pool.freeBytes, 256, 'the one page free in the first slab');
});

test('a chunk past the biggest page is its own buffer, and giving it back leaves the slabs alone', (t) => {
  const pool = new PagePool();
  const big = pool.take(MAX_PAGE_BYTES + 1);
  t.is(pool.bufferOf(big).byteLength, MAX_PAGE_BYTES + 1);
  t.is(pool.offsetOf(big), 0);
  t.is(pool.slabs, 0);
  pool.give(big);
  t.is(pool.slabs, 0);
  t.throws(() => pool.bufferOf(big), { instanceOf: RangeError }, 'a chunk given back is no longer the pool\'s');
});

test('property: chunks held at the same time never share a byte, and every slab goes back', (t) => {
  const op = fc.oneof(
    { arbitrary: fc.record({ take: fc.integer({ min: 1, max: 5000 }) }), weight: 3 },
    { arbitrary: fc.record({ give: fc.nat() }), weight: 2 },
  );
  fc.assert(
    fc.property(fc.array(op, { minLength: 50, maxLength: 500, size: 'max' }), (ops) => {
      const pool = new PagePool();
      const held: { page: number; chunk: Buffer; mark: number }[] = [];
      let marks = 0;
      for (const step of ops) {
        if ('take' in step) {
          const page = pool.take(step.take);
          const chunk = view(pool, page);
          if (chunk.length !== PagePool.chunkBytes(step.take)) return false;
          // Each chunk filled with its own mark: a chunk that overlaps another spoils it.
          const mark = (marks++ % 255) + 1;
          chunk.fill(mark);
          held.push({ page, chunk, mark });
        } else if (held.length > 0) {
          const [{ page }] = held.splice(step.give % held.length, 1) as [{ page: number; chunk: Buffer; mark: number }];
          pool.give(page);
        }
      }
      for (const { page, chunk, mark } of held) if (!view(pool, page).equals(chunk) || chunk.some((byte) => byte !== mark)) return false;
      for (const { page } of held) pool.give(page);
      // One open slab per page size (five) and four spares at most.
      return pool.slabs <= 9;
    }),
    { numRuns: 100 },
  );
  t.pass();
});

test('usedBytes counts the pages out; freeBytes the pages given back in slabs still held, not the unused end of a slab', (t) => {
  const pool = new PagePool();
  const pages = Array.from({ length: 10 }, () => pool.take(1000));
  t.is(pool.usedBytes, 10 * 1024);
  t.is(pool.freeBytes, 0, 'a fresh slab has no page given back');
  pool.give(pages[3] as number);
  pool.give(pages[4] as number);
  t.is(pool.usedBytes, 8 * 1024);
  t.is(pool.freeBytes, 2 * 1024);
  pool.take(1000);
  t.is(pool.freeBytes, 1024, 'a page taken again is no longer free');
  pool.take(MAX_PAGE_BYTES + 1);
  t.is(pool.usedBytes, 9 * 1024, 'a chunk of its own is not a page');
  // A slab's worth more: the free page, the first slab's never used, and 9 in a second slab.
  const perSlab = SLAB_BYTES / 1024;
  const more = Array.from({ length: perSlab }, () => pool.take(1024));
  t.is(pool.slabs, 2);
  t.is(pool.freeBytes, 0);
  for (const page of more) pool.give(page);
  // The second slab, all back, is a spare and goes on counting the 9 pages it handed
  // out; the first holds the rest given back beside its 9 in use.
  t.is(pool.slabs, 2);
  t.is(pool.freeBytes, (perSlab - 9) * 1024 + 9 * 1024);
  t.is(pool.usedBytes, 9 * 1024);
});
