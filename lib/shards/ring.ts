/**
 * A single-producer, single-consumer ring of byte messages in a SharedArrayBuffer: one
 * thread appends batches, another reads them in place, and neither copies through a
 * MessagePort. Its point is the wake-ups it saves: a consumer that is busy (or spinning)
 * finds new messages without being woken, and the producer wakes it (Atomics.notify)
 * only when it said it was going to sleep. On the virtual machines this runs on, waking
 * a sleeping thread costs the waker some 20 µs of CPU, far more than a batch of
 * in-memory commands.
 *
 *   header (Int32Array)  WRITE: offset of the next message to write
 *                        READ: offset of the next message to read
 *                        SLEEPING: 1 while the consumer waits to be notified
 *   data                 messages back to back, each `u32 length | bytes`, padded to 4;
 *                        a length of WRAP sends the reader back to offset 0, and a
 *                        length of ELSEWHERE says the next message travels on the
 *                        port instead (it was too big for the ring)
 *
 * WRITE == READ means empty; the writer never fills the ring to the last byte, so a
 * full ring never looks empty. Offsets are published with Atomics.store after the
 * bytes are written, and read with Atomics.load before the bytes are read, which orders
 * the plain byte accesses between the two threads.
 */
const WRITE = 0;
const READ = 1;
const SLEEPING = 2;

/** Where the header's words are, for a test that plays a producer's part by hand. */
export const RING_HEADER = { WRITE, READ, SLEEPING } as const;
const HEADER_INTS = 4;
const HEADER_BYTES = HEADER_INTS * 4;

const WRAP = 0xffff_ffff;
const ELSEWHERE = 0xffff_fffe;

/** What read() found: a message, nothing, or a message that comes on the port. */
export const RING_EMPTY = null;
export const RING_ELSEWHERE = 'elsewhere';

export class ByteRing {
  readonly buffer: SharedArrayBuffer;
  /** Bytes of message data the ring can hold (less one message's worth of headroom). */
  readonly capacity: number;
  readonly #header: Int32Array;
  readonly #data: Buffer;
  // The consumer's position after the message it last read, applied by release().
  #next = -1;

  /** A new ring with `capacity` data bytes (a multiple of 4). */
  static create(capacity: number): ByteRing {
    if (capacity < 64 || capacity % 4 !== 0) throw new RangeError(`ring capacity must be a multiple of 4 of at least 64, got ${capacity}`);
    return new ByteRing(new SharedArrayBuffer(HEADER_BYTES + capacity));
  }

  /** The same ring seen from another thread, from its SharedArrayBuffer. */
  constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.capacity = buffer.byteLength - HEADER_BYTES;
    this.#header = new Int32Array(buffer, 0, HEADER_INTS);
    this.#data = Buffer.from(buffer, HEADER_BYTES, this.capacity);
  }

  /** The largest message write() takes; a bigger one must go elsewhere (markElsewhere()). */
  get maxMessage(): number {
    return (this.capacity >>> 1) - 8;
  }

  // ---- producer -----------------------------------------------------------------

  /**
   * Appends source[start, end) as one message; false (nothing written) when there is
   * not room for it now. Wakes a sleeping consumer.
   */
  write(source: Uint8Array, start: number, end: number): boolean {
    const length = end - start;
    if (length > this.maxMessage) throw new RangeError(`a message of ${length} bytes is bigger than the ring takes (${this.maxMessage})`);
    const at = this.#reserve(4 + pad(length));
    if (at < 0) return false;
    this.#data.writeUInt32LE(length, at);
    this.#data.set(source.subarray(start, end), at + 4);
    this.#publish(at + 4 + pad(length));
    return true;
  }

  /** Appends a mark saying the next message comes on the port; false when there is no room. */
  markElsewhere(): boolean {
    const at = this.#reserve(4);
    if (at < 0) return false;
    this.#data.writeUInt32LE(ELSEWHERE, at);
    this.#publish(at + 4);
    return true;
  }

  /** The offset to write `bytes` at, wrapping if need be; -1 when the ring has no room. */
  #reserve(bytes: number): number {
    const capacity = this.capacity;
    const read = Atomics.load(this.#header, READ);
    const write = Atomics.load(this.#header, WRITE);
    if (write >= read) {
      // Free: [write, capacity) and [0, read). Never end exactly at read's position.
      const tail = capacity - write;
      if (bytes < tail || (bytes === tail && read > 0)) return write;
      if (bytes < read) {
        // Not at the end: leave a wrap mark (there is always room for it: tail >= 4).
        this.#data.writeUInt32LE(WRAP, write);
        return 0;
      }
      return -1;
    }
    return bytes < read - write ? write : -1;
  }

  #publish(next: number): void {
    Atomics.store(this.#header, WRITE, next === this.capacity ? 0 : next);
    if (Atomics.load(this.#header, SLEEPING) === 1) {
      Atomics.store(this.#header, SLEEPING, 0);
      Atomics.notify(this.#header, WRITE, 1);
    }
  }

  // ---- consumer -----------------------------------------------------------------

  /**
   * The next message, as a view of the ring's memory that stays valid until release();
   * RING_EMPTY when there is none; RING_ELSEWHERE when it comes on the port (already
   * released).
   */
  read(): Buffer | typeof RING_EMPTY | typeof RING_ELSEWHERE {
    let at = Atomics.load(this.#header, READ);
    if (at === Atomics.load(this.#header, WRITE)) return RING_EMPTY;
    let length = this.#data.readUInt32LE(at);
    if (length === WRAP) {
      at = 0;
      length = this.#data.readUInt32LE(0);
    }
    if (length === ELSEWHERE) {
      this.#advance(at + 4);
      return RING_ELSEWHERE;
    }
    this.#next = at + 4 + pad(length);
    return this.#data.subarray(at + 4, at + 4 + length);
  }

  /** Frees the message read() returned last, for the producer to reuse. */
  release(): void {
    if (this.#next < 0) throw new Error('release() without a message read');
    this.#advance(this.#next);
    this.#next = -1;
  }

  /**
   * Says the consumer is about to sleep and returns the promise that resolves when it
   * should look again: at once if something was written meanwhile, else when the
   * producer notifies. (A pending Atomics.waitAsync does not keep Node's event loop
   * alive, nodejs/node#61941: the thread must hold a ref'd handle of its own, its port.)
   */
  sleep(): Promise<unknown> | null {
    const write = Atomics.load(this.#header, WRITE);
    Atomics.store(this.#header, SLEEPING, 1);
    if (Atomics.load(this.#header, READ) !== write) {
      Atomics.store(this.#header, SLEEPING, 0);
      return null;
    }
    const wait = Atomics.waitAsync(this.#header, WRITE, write);
    if (!wait.async) {
      Atomics.store(this.#header, SLEEPING, 0);
      return null;
    }
    // A producer clears the flag and then notifies, in two steps: one that read the flag
    // of an earlier sleep, and was held up before clearing it, can clear this sleep's flag
    // and notify before this wait existed. Its notify then woke no one, and later writes
    // see no sleeper to wake: the wait would never end (a shard or an acceptor that stops
    // answering for good). The flag gone now means that may have happened: end the wait
    // at once. (Later, a producer clears it only after this wait exists, and its notify
    // wakes it.)
    if (Atomics.load(this.#header, SLEEPING) === 0) Atomics.notify(this.#header, WRITE);
    return wait.value;
  }

  /**
   * Ends a consumer's sleep: at shutdown (its waiter would otherwise stay registered), or
   * from the producer's side for a consumer that may have slept through a write.
   */
  wake(): void {
    Atomics.store(this.#header, SLEEPING, 0);
    Atomics.notify(this.#header, WRITE);
  }

  #advance(next: number): void {
    Atomics.store(this.#header, READ, next === this.capacity ? 0 : next);
  }
}

function pad(length: number): number {
  return (length + 3) & ~3;
}
