/**
 * A copy in a buffer of its own, not a slice of Node's shared pool: it may be transferred
 * to another thread, and it keeps nothing else alive.
 */
export function ownCopy(bytes: Uint8Array): Buffer {
  const copy = Buffer.allocUnsafeSlow(bytes.length);
  copy.set(bytes);
  return copy;
}

/**
 * An append-only byte buffer that grows by doubling. `take()` hands the bytes out as a
 * view of a buffer of its own (not Node's shared pool), so the caller may transfer the
 * underlying ArrayBuffer to another thread; the writer then starts a new buffer sized
 * for what the last batch needed.
 */
export class ByteWriter {
  #buffer: Buffer;
  #length = 0;

  constructor(initialCapacity = 4096) {
    this.#buffer = Buffer.allocUnsafeSlow(initialCapacity);
  }

  get length(): number {
    return this.#length;
  }

  /** Makes room for `bytes` more and returns the buffer and offset to write them at. */
  reserve(bytes: number): Buffer {
    const needed = this.#length + bytes;
    if (needed > this.#buffer.length) {
      let capacity = this.#buffer.length * 2;
      while (capacity < needed) capacity *= 2;
      const grown = Buffer.allocUnsafeSlow(capacity);
      this.#buffer.copy(grown, 0, 0, this.#length);
      this.#buffer = grown;
    }
    return this.#buffer;
  }

  /** Moves the write position after bytes written at `length` through `reserve()`. */
  advance(bytes: number): void {
    this.#length += bytes;
  }

  /** Leaves `bytes` bytes to be filled in later, on the taken buffer. */
  skip(bytes: number): void {
    this.reserve(bytes);
    this.#length += bytes;
  }

  /** The bytes written so far; the writer starts afresh. */
  take(): Buffer {
    const out = this.#buffer.subarray(0, this.#length);
    this.#buffer = Buffer.allocUnsafeSlow(Math.max(256, this.#length));
    this.#length = 0;
    return out;
  }
}
