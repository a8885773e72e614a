import { copyBytes } from '../util/copy-bytes.js';
import { RingQueue } from '../util/ring-queue.js';
import { MAX_PAGE_BYTES, MIN_PAGE_BYTES, PagePool } from './page-pool.js';

const EMPTY = Buffer.alloc(0);

// A chunk starts at the pool's smallest page, so the many mailboxes that hold a message or
// two cost little, and the last chunk grows as messages come (copied into a page twice its
// size, as realloc would) up to the pool's biggest page, 4 KiB; only then does the next
// chunk start. So a mailbox's unused end is a fraction of its last chunk, whatever that
// chunk's size: some 700 bytes on average, where chunks that start at 4 KiB each would
// leave 2 KiB. They are pages of the store's PagePool, not an ArrayBuffer each. A message
// never spans chunks: one that does not fit in what the last chunk can grow to starts
// the next (a chunk as big as the message if it must be).
const FIRST_CHUNK_BYTES = MIN_PAGE_BYTES;
// A record's first byte is never 0 (sender ids are stored plus one), so a 0 where a
// record would start marks the unused end of a chunk.
const END_OF_CHUNK = 0;

/**
 * One mailbox's messages, packed: each message is one record in byte chunks,
 *
 *   varint (sender id + 1) | varint body length | body
 *
 * rather than an object and a Buffer per message (~240 bytes of overhead each in V8;
 * a record's overhead is 2-6 bytes). Chunks are read from the front and written at the
 * back; a chunk read to its end goes back to the pool at once, so a draining mailbox
 * gives memory back as it goes. Sender ids come from the store's SenderTable.
 */
export class PackedMailbox {
  /** Messages held. */
  count = 0;
  /** After shift(): the removed message's sender id; its body is source[bodyStart, bodyEnd). */
  senderId = 0;
  source: Buffer = EMPTY;
  bodyStart = 0;
  bodyEnd = 0;
  #pool: PagePool;
  // The chunks' page numbers in the pool, first to last.
  readonly #chunks = new RingQueue<number>();
  // Where the first chunk is (read from #readAt on) and the last (written at #writeAt):
  // looked up in the pool only when they change.
  readonly #head = new ChunkPlace();
  readonly #tail = new ChunkPlace();
  #readAt = 0;
  #writeAt = 0;
  #bytes = 0;

  constructor(pool: PagePool) {
    this.#pool = pool;
  }

  /** Bytes of chunk memory the mailbox holds. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The chunk memory a new mailbox takes for its first message of `length` bytes. */
  static firstChunkFor(length: number): number {
    return PagePool.chunkBytes(recordBytes(length));
  }

  /**
   * At most how many bytes of chunk memory a message of `length` bytes would add to the
   * store (0 when it fits): a new chunk, or the page the last chunk grows into (the page it
   * leaves goes back to the pool, which still counts it).
   */
  growthFor(length: number): number {
    const size = recordBytes(length);
    if (this.#chunks.size === 0) return PagePool.chunkBytes(Math.max(size, FIRST_CHUNK_BYTES));
    if (this.#tail.bytes - this.#writeAt >= size) return 0;
    // A record shorter than `size` may grow the chunk where this one would start another.
    const grown = this.#tail.bytes < MAX_PAGE_BYTES ? PagePool.chunkBytes(Math.min(this.#keptBytes() + size, MAX_PAGE_BYTES)) : 0;
    return Math.max(grown, PagePool.chunkBytes(Math.max(size, FIRST_CHUNK_BYTES)));
  }

  /** Appends a message: body[start, end) from sender `senderId`. */
  push(senderId: number, body: Uint8Array, start: number, end: number): void {
    const id = senderId + 1;
    const length = end - start;
    const size = varintLength(id) + varintLength(length) + length;
    if (this.#chunks.size === 0 || this.#tail.bytes - this.#writeAt < size) this.#roomFor(size);
    const chunk = this.#tail.buffer;
    let at = writeVarint(chunk, this.#tail.start + this.#writeAt, id);
    at = writeVarint(chunk, at, length);
    this.#writeAt = at + copyBytes(body, start, end, chunk, at) - this.#tail.start;
    this.count++;
  }

  /** Removes the oldest message (see senderId, source, bodyStart, bodyEnd); false when empty. */
  shift(): boolean {
    if (this.count === 0) return false;
    if (this.#readAt === this.#head.bytes || this.#head.buffer[this.#head.start + this.#readAt] === END_OF_CHUNK) {
      // Read to its end: its messages are all gone, and so is the chunk.
      this.#pool.give(this.#chunks.shift() as number);
      this.#bytes -= this.#head.bytes;
      this.#loadHead();
      this.#readAt = 0;
    }
    const chunk = this.#head.buffer;
    let at = this.#head.start + this.#readAt;
    let id = 0;
    for (let shift = 0; ; shift += 7) {
      const byte = chunk[at++] as number;
      id += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) break;
    }
    let length = 0;
    for (let shift = 0; ; shift += 7) {
      const byte = chunk[at++] as number;
      length += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) break;
    }
    this.senderId = id - 1;
    this.source = chunk;
    this.bodyStart = at;
    this.bodyEnd = at + length;
    this.#readAt = at + length - this.#head.start;
    if (--this.count === 0) this.#emptied();
    return true;
  }

  /**
   * Copies every chunk into a chunk of `pool`, which becomes its pool; the old chunks are
   * left to the old pool, which the caller drops.
   */
  moveTo(pool: PagePool): void {
    const old = this.#pool;
    for (let i = this.#chunks.size; i > 0; i--) {
      const page = this.#chunks.shift() as number;
      const start = old.offsetOf(page);
      const moved = pool.take(old.bytesOf(page));
      old.bufferOf(page).copy(pool.bufferOf(moved), pool.offsetOf(moved), start, start + old.bytesOf(page));
      this.#chunks.push(moved);
    }
    this.#pool = pool;
    this.#loadHead();
    this.#loadTail();
  }

  /** Gives every chunk back to the pool: for a mailbox that is dropped, empty or not. */
  release(): void {
    for (let page = this.#chunks.shift(); page !== undefined; page = this.#chunks.shift()) this.#pool.give(page);
    this.count = 0;
    this.#readAt = 0;
    this.#writeAt = 0;
    this.#bytes = 0;
    this.#loadHead();
    this.#loadTail();
  }

  // Empty: what is left goes back, except a first-size chunk, kept for the next message
  // of a mailbox that keeps emptying and filling. (The returned body may still be in it,
  // and so in pool memory that is not another chunk's before the store's next call.)
  #emptied(): void {
    if (this.#head.bytes !== FIRST_CHUNK_BYTES || this.#chunks.size !== 1) {
      this.release();
      return;
    }
    this.#readAt = 0;
    this.#writeAt = 0;
  }

  #loadHead(): void {
    this.#head.load(this.#pool, this.#chunks.peek());
  }

  #loadTail(): void {
    this.#tail.load(this.#pool, this.#chunks.at(this.#chunks.size - 1));
  }

  // The bytes of the last chunk that must be kept: its records, less those already read
  // when it is also the first.
  #keptBytes(): number {
    return this.#chunks.size === 1 ? this.#writeAt - this.#readAt : this.#writeAt;
  }

  // Room for a record of `size` bytes at the back: the last chunk, with its read records
  // dropped where that frees half of it (so each byte is moved at most once more for each
  // it frees), or grown into a bigger page while it is smaller than the biggest, else a
  // new chunk.
  #roomFor(size: number): void {
    const pool = this.#pool;
    if (this.#chunks.size > 0) {
      const kept = this.#keptBytes();
      if (kept + size <= this.#tail.bytes / 2) {
        this.#moveLast(this.#tail.buffer, this.#tail.start);
        return;
      }
      if (this.#tail.bytes < MAX_PAGE_BYTES && kept + size <= MAX_PAGE_BYTES) {
        const last = this.#chunks.at(this.#chunks.size - 1) as number;
        const page = pool.take(kept + size);
        this.#moveLast(pool.bufferOf(page), pool.offsetOf(page));
        this.#chunks.set(this.#chunks.size - 1, page);
        this.#bytes += pool.bytesOf(page) - this.#tail.bytes;
        pool.give(last);
        this.#loadTail();
        if (this.#chunks.size === 1) this.#loadHead();
        return;
      }
      // Mark where the old chunk's records end, unless they fill it.
      if (this.#writeAt < this.#tail.bytes) this.#tail.buffer[this.#tail.start + this.#writeAt] = END_OF_CHUNK;
    }
    const page = pool.take(Math.max(size, FIRST_CHUNK_BYTES));
    this.#chunks.push(page);
    this.#bytes += pool.bytesOf(page);
    this.#writeAt = 0;
    this.#loadTail();
    if (this.#chunks.size === 1) this.#loadHead();
  }

  // Copies the last chunk's records to `to` from `toStart` (which may be where they are),
  // without those already read when it is also the first.
  #moveLast(to: Buffer, toStart: number): void {
    const from = this.#chunks.size === 1 ? this.#readAt : 0;
    this.#tail.buffer.copy(to, toStart, this.#tail.start + from, this.#tail.start + this.#writeAt);
    this.#writeAt -= from;
    if (this.#chunks.size === 1) this.#readAt = 0;
  }
}


/** Where a chunk is: its pool page's buffer, where it starts there and how long it is. */
class ChunkPlace {
  buffer: Buffer = EMPTY;
  start = 0;
  bytes = 0;

  /** Page `page` of `pool`'s place, or nowhere (so no slab is kept alive for it). */
  load(pool: PagePool, page: number | undefined): void {
    this.buffer = page === undefined ? EMPTY : pool.bufferOf(page);
    this.start = page === undefined ? 0 : pool.offsetOf(page);
    this.bytes = page === undefined ? 0 : pool.bytesOf(page);
  }
}

// A record's size for a body of `length` bytes, taking the sender id's varint at its
// widest (5 bytes, for ids up to 2^32): growthFor() may then ask for a few bytes more
// than push() takes, never fewer.
function recordBytes(length: number): number {
  return 5 + varintLength(length) + length;
}

function varintLength(value: number): number {
  let length = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    length++;
  }
  return length;
}

/** LEB128: seven bits a byte, low first, the high bit set on every byte but the last. */
function writeVarint(target: Buffer, at: number, value: number): number {
  while (value >= 0x80) {
    target[at++] = (value & 0x7f) | 0x80;
    value = Math.floor(value / 128);
  }
  target[at++] = value;
  return at;
}
