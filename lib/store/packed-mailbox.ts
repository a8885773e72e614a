import { copyBytes } from '../util/copy-bytes.js';
import { RingQueue } from '../util/ring-queue.js';
import { MAX_PAGE_BYTES, MIN_PAGE_BYTES, PagePool } from './page-pool.js';

// Chunks start small, so the many mailboxes that hold a message or two cost little, and
// double up to the pool's biggest page (4 KiB), so a full mailbox's unused end is 2 KiB
// on average. They are pages of the store's PagePool, not an ArrayBuffer each. A
// message never spans chunks: one that does not fit in what is left of the last chunk
// starts the next (a chunk as big as the message if it must be).
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
  #nextChunkBytes = FIRST_CHUNK_BYTES;
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

  /** How many bytes of chunk memory a message of `length` bytes would add (0 when it fits). */
  growthFor(length: number): number {
    const size = recordBytes(length);
    const chunk = this.#chunks.at(this.#chunks.size - 1);
    if (chunk !== undefined && chunk.length - this.#writeAt >= size) return 0;
    return PagePool.chunkBytes(Math.max(size, this.#nextChunkBytes));
  }

  /** Appends a message: body[start, end) from sender `senderId`. */
  push(senderId: number, body: Uint8Array, start: number, end: number): void {
    const id = senderId + 1;
    const length = end - start;
    const size = varintLength(id) + varintLength(length) + length;
    let chunk = this.#chunks.at(this.#chunks.size - 1);
    if (chunk === undefined || chunk.length - this.#writeAt < size) chunk = this.#newChunk(chunk, size);
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
    this.#nextChunkBytes = FIRST_CHUNK_BYTES;
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

  #newChunk(last: Buffer | undefined, size: number): Buffer {
    // Mark where the old chunk's records end, unless they fill it.
    if (last !== undefined && this.#writeAt < last.length) last[this.#writeAt] = END_OF_CHUNK;
    const chunk = this.#pool.take(Math.max(size, this.#nextChunkBytes));
    this.#nextChunkBytes = Math.min(MAX_PAGE_BYTES, this.#nextChunkBytes * 2);
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
    this.#writeAt = 0;
    return chunk;
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
