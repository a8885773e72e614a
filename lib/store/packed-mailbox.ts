import { copyBytes } from '../util/copy-bytes.js';
import { RingQueue } from '../util/ring-queue.js';
import { MAX_PAGE_BYTES, MIN_PAGE_BYTES, PagePool } from './page-pool.js';

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
  readonly #chunks = new RingQueue<Buffer>();
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
    const last = this.#chunks.at(this.#chunks.size - 1);
    if (last === undefined) return PagePool.chunkBytes(Math.max(size, FIRST_CHUNK_BYTES));
    if (last.length - this.#writeAt >= size) return 0;
    // A record shorter than `size` may grow the chunk where this one would start another.
    const grown = last.length < MAX_PAGE_BYTES ? PagePool.chunkBytes(Math.min(this.#keptBytes() + size, MAX_PAGE_BYTES)) : 0;
    return Math.max(grown, PagePool.chunkBytes(Math.max(size, FIRST_CHUNK_BYTES)));
  }

  /** Appends a message: body[start, end) from sender `senderId`. */
  push(senderId: number, body: Uint8Array, start: number, end: number): void {
    const id = senderId + 1;
    const length = end - start;
    const size = varintLength(id) + varintLength(length) + length;
    let chunk = this.#chunks.at(this.#chunks.size - 1);
    if (chunk === undefined || chunk.length - this.#writeAt < size) chunk = this.#roomFor(chunk, size);
    let at = writeVarint(chunk, this.#writeAt, id);
    at = writeVarint(chunk, at, length);
    this.#writeAt = at + copyBytes(body, start, end, chunk, at);
    this.count++;
  }

  /** Removes the oldest message (see senderId, source, bodyStart, bodyEnd); false when empty. */
  shift(): boolean {
    if (this.count === 0) return false;
    let chunk = this.#chunks.peek() as Buffer;
    if (this.#readAt === chunk.length || chunk[this.#readAt] === END_OF_CHUNK) {
      // Read to its end: its messages are all gone, and so is the chunk.
      this.#chunks.shift();
      this.#bytes -= chunk.length;
      this.#pool.give(chunk);
      chunk = this.#chunks.peek() as Buffer;
      this.#readAt = 0;
    }
    let at = this.#readAt;
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
    this.#readAt = at + length;
    if (--this.count === 0) this.#emptied();
    return true;
  }

  /**
   * Copies every chunk that is a page of the mailbox's pool into a page of `pool`, which
   * becomes its pool; the old pages are left to the old pool, which the caller drops.
   */
  moveTo(pool: PagePool): void {
    for (let i = this.#chunks.size; i > 0; i--) {
      const chunk = this.#chunks.shift() as Buffer;
      // Past the biggest page a chunk is a buffer of its own, no pool's: it stays as it is.
      if (chunk.length > MAX_PAGE_BYTES) {
        this.#chunks.push(chunk);
      } else {
        const page = pool.take(chunk.length);
        chunk.copy(page);
        this.#chunks.push(page);
      }
    }
    this.#pool = pool;
  }

  /** Gives every chunk back to the pool: for a mailbox that is dropped, empty or not. */
  release(): void {
    for (let chunk = this.#chunks.shift(); chunk !== undefined; chunk = this.#chunks.shift()) this.#pool.give(chunk);
    this.count = 0;
    this.#readAt = 0;
    this.#writeAt = 0;
    this.#bytes = 0;
  }

  // Empty: what is left goes back, except a first-size chunk, kept for the next message
  // of a mailbox that keeps emptying and filling. (The returned body may still be a view
  // of it, and so of pool memory that is not another chunk's before the store's next
  // call.)
  #emptied(): void {
    const chunk = this.#chunks.peek() as Buffer;
    if (chunk.length !== FIRST_CHUNK_BYTES || this.#chunks.size !== 1) {
      this.release();
      return;
    }
    this.#readAt = 0;
    this.#writeAt = 0;
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
  #roomFor(last: Buffer | undefined, size: number): Buffer {
    if (last !== undefined) {
      const kept = this.#keptBytes();
      if (kept + size <= last.length / 2) return this.#moveLast(last, last);
      if (last.length < MAX_PAGE_BYTES && kept + size <= MAX_PAGE_BYTES) {
        const page = this.#moveLast(last, this.#pool.take(kept + size));
        this.#chunks.set(this.#chunks.size - 1, page);
        this.#bytes += page.length - last.length;
        this.#pool.give(last);
        return page;
      }
      // Mark where the old chunk's records end, unless they fill it.
      if (this.#writeAt < last.length) last[this.#writeAt] = END_OF_CHUNK;
    }
    const chunk = this.#pool.take(Math.max(size, FIRST_CHUNK_BYTES));
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
    this.#writeAt = 0;
    return chunk;
  }

  // Copies the last chunk's records to the start of `to` (which may be the chunk itself),
  // without those already read when it is also the first.
  #moveLast(last: Buffer, to: Buffer): Buffer {
    const from = this.#chunks.size === 1 ? this.#readAt : 0;
    last.copy(to, 0, from, this.#writeAt);
    this.#writeAt -= from;
    if (this.#chunks.size === 1) this.#readAt = 0;
    return to;
  }
}

const EMPTY = Buffer.alloc(0);

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
