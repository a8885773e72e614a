// Page sizes: 256 bytes doubling up to 4 KiB. A chunk asked for is rounded up to one.
export const MIN_PAGE_BYTES = 256;
export const MAX_PAGE_BYTES = 4096;
// Every slab is this big, whatever its pages' size, so that a slab whose pages all came
// back can serve pages of any size next.
export const SLAB_BYTES = 256 * 1024;
// Slabs whose pages all came back are kept, up to this many, for the next slab of any
// size, rather than given back to malloc and asked for again: mailboxes whose last
// chunks grow together through the page sizes free and need slabs at every step, and
// malloc, asked over and over, left 7-10 MiB more resident per 10^6 messages in
// bench:memory (2 shards, every mailbox filling at once).
const SPARE_SLABS = 4;

/** One ArrayBuffer carved into pages of one size. */
interface Slab {
  readonly buffer: Buffer;
  readonly size: PageSize;
  // Offsets of pages given back, taken again first.
  readonly free: number[];
  // Pages never handed out start here. (Pages out: next - free.length.)
  next: number;
  // Where the slab sits in its size's list of slabs with a free page, or -1 when full.
  at: number;
}

/** Pages of one size, and the slabs that have one free. */
interface PageSize {
  readonly bytes: number;
  readonly open: Slab[];
}

/**
 * Message chunks for a store's mailboxes, carved from big slabs instead of an
 * ArrayBuffer each. An ArrayBuffer costs some 300-500 bytes of V8 objects and malloc
 * bookkeeping besides its own (bench/micro/buffer-overhead.ts: about 470 for a 256-byte
 * Buffer, 290 for an 8 KiB one), and a chunk as a view of a slab costs a V8 object of
 * about 100 bytes and nothing in malloc. A page given back serves a later chunk of its
 * size (from the slab that last got a free page again, or the newest); pages of
 * different sizes never share a slab at once. A slab whose pages are all back is kept as a
 * spare for the next slab of any size (a few at most; past that it is let go), unless it
 * is the only slab of its size with a free page, which stays as it is (so that one chunk
 * taken and given back over and over does not take and drop a slab each time).
 *
 * Like any allocator of this kind, the pool can be left holding slabs for a few pages in
 * each: `freeBytes` says how much is held in pages given back, so that the store counts
 * it, and a store that finds too much of it copies its chunks into a new pool.
 *
 * A page given back may be handed out again at once: a view of it stays readable, but
 * it is another chunk's memory from the next take().
 */
export class PagePool {
  readonly #sizes: PageSize[] = [];
  readonly #slabOf = new Map<ArrayBufferLike, Slab>();
  #usedBytes = 0;
  #freeBytes = 0;
  readonly #spare: Buffer[] = [];

  constructor() {
    for (let bytes = MIN_PAGE_BYTES; bytes <= MAX_PAGE_BYTES; bytes *= 2) this.#sizes.push({ bytes, open: [] });
  }

  /** Slabs held. */
  get slabs(): number {
    return this.#slabOf.size + this.#spare.length;
  }

  /** Bytes of the pages handed out and not given back. */
  get usedBytes(): number {
    return this.#usedBytes;
  }

  /**
   * Bytes of the pages given back and not taken again, in slabs still held, and of the
   * spare slabs: memory the pool holds for no chunk. (The never used end of a slab in use
   * is not counted: it need not cost memory.)
   */
  get freeBytes(): number {
    return this.#freeBytes;
  }

  /** The bytes a chunk asked for as `bytes` takes: a page size, or `bytes` past the biggest page. */
  static chunkBytes(bytes: number): number {
    if (bytes > MAX_PAGE_BYTES) return bytes;
    let page = MIN_PAGE_BYTES;
    while (page < bytes) page *= 2;
    return page;
  }

  /** A chunk of at least `bytes` bytes (PagePool.chunkBytes(bytes) long), contents undefined. */
  take(bytes: number): Buffer {
    if (bytes > MAX_PAGE_BYTES) return Buffer.allocUnsafeSlow(bytes);
    const size = this.#sizes[31 - Math.clz32(PagePool.chunkBytes(bytes) / MIN_PAGE_BYTES)] as PageSize;
    const slab = size.open[size.open.length - 1] ?? this.#newSlab(size);
    let offset = slab.free.pop();
    if (offset === undefined) offset = slab.next++ * size.bytes;
    else this.#freeBytes -= size.bytes;
    this.#usedBytes += size.bytes;
    if (slab.next === SLAB_BYTES / size.bytes && slab.free.length === 0) removeOpen(slab);
    return slab.buffer.subarray(offset, offset + size.bytes);
  }

  /** Gives back a chunk take() returned; it must not be written to again. */
  give(chunk: Buffer): void {
    const slab = this.#slabOf.get(chunk.buffer);
    if (slab === undefined) return; // a chunk of its own, past the biggest page: the GC takes it
    const { size } = slab;
    if (slab.at === -1) slab.at = size.open.push(slab) - 1;
    // A slab is a buffer of its own (allocUnsafeSlow): offsets in it are byteOffsets.
    slab.free.push(chunk.byteOffset);
    this.#usedBytes -= size.bytes;
    this.#freeBytes += size.bytes;
    if (slab.free.length < slab.next || size.open.length === 1) return;
    removeOpen(slab);
    this.#freeBytes -= slab.free.length * size.bytes;
    this.#slabOf.delete(slab.buffer.buffer);
    if (this.#spare.length < SPARE_SLABS) {
      this.#spare.push(slab.buffer);
      this.#freeBytes += SLAB_BYTES;
    }
  }

  #newSlab(size: PageSize): Slab {
    // Pages are handed out from the front, so the end of a slab that was never used need
    // not cost memory (when malloc maps it fresh).
    let buffer = this.#spare.pop();
    if (buffer === undefined) buffer = Buffer.allocUnsafeSlow(SLAB_BYTES);
    else this.#freeBytes -= SLAB_BYTES;
    const slab: Slab = { buffer, size, free: [], next: 0, at: size.open.length };
    size.open.push(slab);
    this.#slabOf.set(buffer.buffer, slab);
    return slab;
  }
}

// Takes a slab out of its size's list of slabs with a free page, in O(1).
function removeOpen(slab: Slab): void {
  const { open } = slab.size;
  const last = open.pop() as Slab;
  if (last !== slab) {
    open[slab.at] = last;
    last.at = slab.at;
  }
  slab.at = -1;
}
