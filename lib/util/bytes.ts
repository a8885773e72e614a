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
 * `bytes` as a buffer that may be transferred to another thread: itself when it spans a
 * whole ArrayBuffer of its own, else a copy. (Transferring a slice of Node's pool would
 * take the pool away from every other buffer in it.)
 */
export function transferable(bytes: Buffer): Buffer {
  const { buffer } = bytes;
  return buffer instanceof ArrayBuffer && bytes.byteOffset === 0 && bytes.byteLength === buffer.byteLength ? bytes : ownCopy(bytes);
}

// A ByteWriter's buffer past this size is let go when a batch fills less than a quarter
// of it: a burst of big batches does not leave every channel holding its peak for good.
const SHRINK_ABOVE = 64 * 1024;

/** An append-only byte buffer that grows by doubling, reused from one `take()` to the next. */
export class ByteWriter {
  readonly #initialCapacity: number;
  #buffer: Buffer;
  #length = 0;

  constructor(initialCapacity = 4096) {
    this.#initialCapacity = initialCapacity;
    this.#buffer = Buffer.allocUnsafeSlow(initialCapacity);
  }

  get length(): number {
    return this.#length;
  }

  /** Bytes the writer holds for batches, written or not. */
  get capacity(): number {
    return this.#buffer.length;
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

  /**
   * The bytes written so far, copied out (into Node's shared pool when they are few: see
   * transferable()); the writer starts afresh in the same buffer. A fresh ArrayBuffer per
   * batch would cost an allocation, a free and the garbage collector's bookkeeping for
   * each, and batches are many when they are small.
   */
  take(): Buffer {
    const length = this.#length;
    const out = Buffer.allocUnsafe(length);
    out.set(this.#buffer.subarray(0, length));
    this.#restart(length);
    return out;
  }

  /**
   * The bytes written so far, in the writer's own buffer, with no copy: for a reader that
   * is done with them before anything is written again (one that runs the batch within
   * the call it is handed over in). The writer starts afresh.
   */
  takeInPlace(): Buffer {
    const length = this.#length;
    const out = this.#buffer.subarray(0, length);
    this.#restart(length);
    return out;
  }

  #restart(taken: number): void {
    this.#length = 0;
    if (this.#buffer.length > SHRINK_ABOVE && taken * 4 < this.#buffer.length) this.#buffer = Buffer.allocUnsafeSlow(this.#initialCapacity);
  }
}
