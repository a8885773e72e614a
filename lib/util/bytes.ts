import { copyBytes } from './copy-bytes.js';

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

  u8(value: number): void {
    this.reserve(1)[this.#length++] = value;
  }

  u16(value: number): void {
    this.reserve(2).writeUInt16LE(value, this.#length);
    this.#length += 2;
  }

  u32(value: number): void {
    this.reserve(4).writeUInt32LE(value, this.#length);
    this.#length += 4;
  }

  bytes(value: Uint8Array): void {
    this.#length += copyBytes(value, 0, value.length, this.reserve(value.length), this.#length);
  }

  /** Bytes source[start, end). */
  range(source: Buffer, start: number, end: number): void {
    const target = this.reserve(end - start);
    this.#length += copyBytes(source, start, end, target, this.#length);
  }

  /** Length-prefixed (u16) bytes. */
  shortBytes(value: Uint8Array): void {
    this.u16(value.length);
    this.bytes(value);
  }

  /** The bytes written so far; the writer starts afresh. */
  take(): Buffer {
    const out = this.#buffer.subarray(0, this.#length);
    this.#buffer = Buffer.allocUnsafeSlow(Math.max(256, this.#length));
    this.#length = 0;
    return out;
  }
}
