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

/** One ArrayBuffer carved into pages of one size, or a chunk past the biggest page. */
interface Slab {
  readonly id: number;
  readonly buffer: Buffer;
  readonly size: PageSize;
  // Indexes of pages given back, taken again first.
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

// A page is named by a number, its slab's id times this plus its index in the slab: a
// small integer, which V8 keeps in a list without an object for each.
const PAGES_PER_ID = SLAB_BYTES / MIN_PAGE_BYTES;

/**
 * Message chunks for a store's mailboxes, carved from big slabs instead of an
 * ArrayBuffer each, and named by numbers rather than views. An ArrayBuffer costs some
 * 300-500 bytes of V8 objects and malloc bookkeeping besides its own
 * (bench/micro/buffer-overhead.ts: about 470 for a 256-byte Buffer, 290 for an 8 KiB
 * one), and a view of a slab a V8 object of about 100 bytes (1.5 MB per 10^6 messages of
 * 64 bytes, bench/RESULTS.md); a page's number costs its place in its mailbox's list. A
 * page given back serves a later chunk of its size (from the slab that last got a free
 * page again, or the newest); pages of different sizes never share a slab at once. A slab
 * whose pages are all back is kept as a spare for the next slab of any size (a few at
 * most; past that it is let go), unless it is the only slab of its size with a free page,
 * which stays as it is (so that one chunk taken and given back over and over does not
 * take and drop a slab each time). A chunk past the biggest page is a buffer of its own,
 * named the same way.
 *
 * Like any allocator of this kind, the pool can be left holding slabs for a few pages in
 * each: `freeBytes` says how much is held in pages given back, so that the store counts
 * it, and a store that finds too much of it copies its chunks into a new pool.
 *
 * A page given back may be handed out again at once: its bytes stay readable, but they
 * are another chunk's from the next take().
 */
export class PagePool {
  readonly #sizes: PageSize[] = [];
  // Slabs and chunks of their own by id; ids of those let go are used again.
  readonly #byId: (Slab | undefined)[] = [];
  readonly #freeIds: number[] = [];
  #slabs = 0;
  #usedBytes = 0;
  #freeBytes = 0;
  // Slabs whose pages all came back, and how much of each was ever handed out.
  readonly #spare: { readonly buffer: Buffer; readonly touched: number }[] = [];

  constructor() {
    for (let bytes = MIN_PAGE_BYTES; bytes <= MAX_PAGE_BYTES; bytes *= 2) this.#sizes.push({ bytes, open: [] });
  }

  /** Slabs held (chunks of their own past the biggest page are not slabs). */
  get slabs(): number {
    return this.#slabs + this.#spare.length;
  }

  /** Bytes of the pages handed out and not given back. */
  get usedBytes(): number {
    return this.#usedBytes;
  }

  /**
   * Bytes of the pages given back and not taken again, in slabs still held and in spare
   * ones: memory the pool holds for no chunk. (The never used end of a slab is not
   * counted: it need not cost memory. A spare taken for pages of another size may have
   * been used further than they reach; that much, at most a slab per page size, is not
   * counted either.)
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

  /** A chunk of at least `bytes` bytes (PagePool.chunkBytes(bytes) long), contents undefined: its page number. */
  take(bytes: number): number {
    if (bytes > MAX_PAGE_BYTES) return this.#register(Buffer.allocUnsafeSlow(bytes), { bytes, open: [] }).id * PAGES_PER_ID;
    const size = this.#sizes[31 - Math.clz32(PagePool.chunkBytes(bytes) / MIN_PAGE_BYTES)] as PageSize;
    const slab = size.open[size.open.length - 1] ?? this.#newSlab(size);
    let index = slab.free.pop();
    if (index === undefined) index = slab.next++;
    else this.#freeBytes -= size.bytes;
    this.#usedBytes += size.bytes;
    if (slab.next === SLAB_BYTES / size.bytes && slab.free.length === 0) removeOpen(slab);
    return slab.id * PAGES_PER_ID + index;
  }

  /** The buffer page `page` is in. */
  bufferOf(page: number): Buffer {
    return this.#slabOf(page).buffer;
  }

  /** Where page `page` starts in bufferOf(page). */
  offsetOf(page: number): number {
    const slab = this.#slabOf(page);
    return (page % PAGES_PER_ID) * slab.size.bytes;
  }

  /** How long page `page` is. */
  bytesOf(page: number): number {
    return this.#slabOf(page).size.bytes;
  }

  /** Gives back a page take() returned; it must not be written to again. */
  give(page: number): void {
    const slab = this.#slabOf(page);
    const { size } = slab;
    if (size.bytes > MAX_PAGE_BYTES) {
      // A chunk of its own: the GC takes it.
      this.#unregister(slab);
      return;
    }
    if (slab.at === -1) slab.at = size.open.push(slab) - 1;
    slab.free.push(page % PAGES_PER_ID);
    this.#usedBytes -= size.bytes;
    this.#freeBytes += size.bytes;
    if (slab.free.length < slab.next || size.open.length === 1) return;
    removeOpen(slab);
    this.#unregister(slab);
    this.#slabs--;
    // A spare goes on counting the pages it handed out (what of it is in use as memory),
    // so that giving back a page never counts more than the page.
    const touched = slab.free.length * size.bytes;
    if (this.#spare.length < SPARE_SLABS) this.#spare.push({ buffer: slab.buffer, touched });
    else this.#freeBytes -= touched;
  }

  #slabOf(page: number): Slab {
    const slab = this.#byId[Math.floor(page / PAGES_PER_ID)];
    if (slab === undefined) throw new RangeError(`page ${page} is not one of this pool's`);
    return slab;
  }

  #newSlab(size: PageSize): Slab {
    // Pages are handed out from the front, so the end of a slab that was never used need
    // not cost memory (when malloc maps it fresh).
    const spare = this.#spare.pop();
    if (spare !== undefined) this.#freeBytes -= spare.touched;
    const slab = this.#register(spare?.buffer ?? Buffer.allocUnsafeSlow(SLAB_BYTES), size);
    slab.at = size.open.push(slab) - 1;
    this.#slabs++;
    return slab;
  }

  #register(buffer: Buffer, size: PageSize): Slab {
    const id = this.#freeIds.pop() ?? this.#byId.length;
    const slab: Slab = { id, buffer, size, free: [], next: 0, at: -1 };
    this.#byId[id] = slab;
    return slab;
  }

  #unregister(slab: Slab): void {
    this.#byId[slab.id] = undefined;
    this.#freeIds.push(slab.id);
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
