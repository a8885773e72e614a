import { ProtocolError } from '../errors.js';

const LF = 0x0a;
const CR = 0x0d;
const EMPTY = Buffer.alloc(0);
const KEPT_PARTIAL_BYTES = 4096;

/**
 * Splits a byte stream into lines. Lines are handed out one at a time, so the reader can
 * stop mid-chunk (backpressure) and carry on later without copying. `nextLine()` gives
 * each line as a range of a buffer (`source`, `start`, `end`), with no allocation for a
 * line that lies within one chunk; `next()` gives it as a Buffer.
 *
 * PROTOCOL: a line ends at LF; one CR right before the LF is dropped; a line whose
 * content passes `maxLineBytes` is an error the moment the limit is passed, so at most
 * `maxLineBytes + 1` bytes of an unfinished line are ever held (the +1 is a CR that may
 * turn out to precede the LF).
 *
 * A line from `nextLine()` is valid until the next call: it is a range of the chunk given
 * to `push()` when it lies within one chunk, and of a buffer of the framer's own when it
 * spans chunks, which a big line's successor may reuse.
 */
export class LineFramer {
  readonly maxLineBytes: number;
  /** After nextLine() returned true: the line is source[start, end), valid until the next call. */
  source: Buffer = EMPTY;
  start = 0;
  end = 0;
  #chunk: Buffer | null = null;
  #pos = 0;
  // The start of a line that spans chunks, copied into one reusable buffer rather than
  // kept as a list of chunk references: a peer sending one byte per packet then costs
  // exactly the bytes it sent, not an object per byte.
  #partial: Buffer | null = null;
  #partialLength = 0;
  // The big buffer the last such line was finished in: once the caller moves on to the
  // next line it is free again, and holds the next line that spans chunks (a client
  // streaming big messages then costs no buffer per message). Dropped once the reads so
  // far are used up with no line unfinished, or the reader pauses (dropSpare()).
  #spare: Buffer | null = null;

  constructor(maxLineBytes: number) {
    this.maxLineBytes = maxLineBytes;
  }

  /** True while the last pushed chunk still holds bytes that `next()` has not looked at. */
  get hasUnreadBytes(): boolean {
    return this.#chunk !== null;
  }

  /**
   * Bytes of an unfinished line held between chunks. The unread rest of the last chunk
   * is not counted: it is mostly whole lines waiting their turn, held by the connection
   * whose read it was and never more than one read's worth.
   */
  get partialBytes(): number {
    return this.#partialLength;
  }

  /** Takes the next chunk of the stream; the previous one must have been read to the end. */
  push(chunk: Buffer): void {
    if (this.#chunk !== null) throw new Error('LineFramer.push() before the previous chunk was consumed');
    if (chunk.length > 0) {
      this.#chunk = chunk;
      this.#pos = 0;
    }
  }

  /**
   * Gives the unread bytes of the last pushed chunk a buffer of their own: its buffer is
   * about to be reused (a read buffer shared between connections) while they wait.
   */
  detach(): void {
    const chunk = this.#chunk;
    if (chunk === null) return;
    this.#chunk = Buffer.from(chunk.subarray(this.#pos));
    this.#pos = 0;
  }

  /**
   * Lets go of the buffer the last big line was finished in (see #spare), and of the last
   * line: the reader is about to stop for a while, and an idle connection should hold
   * only what it counts.
   */
  dropSpare(): void {
    this.#spare = null;
    this.source = EMPTY;
  }

  /** The next whole line without its terminator, as a Buffer of its own, or null when more bytes are needed. */
  next(): Buffer | null {
    return this.nextLine() ? Buffer.from(this.source.subarray(this.start, this.end)) : null;
  }

  /**
   * Moves to the next whole line: true when there is one (in `source`, `start`, `end`),
   * false when more bytes are needed.
   */
  nextLine(): boolean {
    const chunk = this.#chunk;
    if (chunk === null) {
      // Read to the end with no line unfinished: the connection waits for its peer.
      this.dropSpare();
      return false;
    }
    const start = this.#pos;
    const lf = chunk.indexOf(LF, start);
    if (lf === -1) {
      // Only a big unfinished line may take the spare: what a connection holds is counted
      // by the bytes held, and a few bytes must not keep a big buffer.
      if (this.#partial === null && this.#partialLength + chunk.length - start > KEPT_PARTIAL_BYTES) this.#partial = this.#spare;
      this.dropSpare();
      this.#hold(chunk, start);
      return false;
    }
    this.#pos = lf + 1;
    if (this.#pos === chunk.length) this.#chunk = null;
    if (this.#partialLength === 0) {
      const end = lf > start && chunk[lf - 1] === CR ? lf - 1 : lf;
      this.#check(end - start);
      this.source = chunk;
      this.start = start;
      this.end = end;
      return true;
    }
    const line = this.#finishPartial(chunk, start, lf);
    this.source = line;
    this.start = 0;
    this.end = line.length;
    return true;
  }

  #finishPartial(chunk: Buffer, start: number, lf: number): Buffer {
    const partial = this.#partial as Buffer;
    const total = this.#partialLength + (lf - start);
    const lastByte = lf > start ? chunk[lf - 1] : partial[this.#partialLength - 1];
    const length = lastByte === CR ? total - 1 : total;
    this.#check(length);
    const fromPartial = Math.min(this.#partialLength, length);
    if (partial.length > KEPT_PARTIAL_BYTES && partial.length >= length) {
      // A big buffer is let go once its line is done (below): the line is finished in it
      // rather than copied out of it into another.
      chunk.copy(partial, fromPartial, start, start + (length - fromPartial));
      this.#partialLength = 0;
      this.#partial = null;
      this.#spare = partial;
      return partial.subarray(0, length);
    }
    const line = Buffer.allocUnsafe(length);
    partial.copy(line, 0, 0, fromPartial);
    if (length > fromPartial) chunk.copy(line, fromPartial, start, start + (length - fromPartial));
    this.#partialLength = 0;
    // A big buffer is let go once its line is done: idle connections then hold no more
    // than KEPT_PARTIAL_BYTES each, and the server's budget for unfinished lines (which
    // counts held bytes) is what they really cost.
    if (partial.length > KEPT_PARTIAL_BYTES) this.#partial = null;
    return line;
  }

  #hold(chunk: Buffer, start: number): void {
    const extra = chunk.length - start;
    const total = this.#partialLength + extra;
    this.#chunk = null;
    // Over the limit by two bytes, or by one that is not a CR: no LF can save this line.
    if (total > this.maxLineBytes + 1 || (total === this.maxLineBytes + 1 && chunk[chunk.length - 1] !== CR)) {
      this.#partialLength = 0;
      throw new ProtocolError('PH_ERR_PROTOCOL_LINE_TOO_LONG', `line longer than ${this.maxLineBytes} bytes`);
    }
    if (this.#partial === null || this.#partial.length < total) {
      // A big line gets room for its rest as it comes, to be finished in place.
      const wanted = total > KEPT_PARTIAL_BYTES ? 2 * total : Math.max(total, 2 * (this.#partial?.length ?? 64));
      const grown = Buffer.allocUnsafe(Math.min(this.maxLineBytes + 1, wanted));
      if (this.#partial !== null) this.#partial.copy(grown, 0, 0, this.#partialLength);
      this.#partial = grown;
    }
    chunk.copy(this.#partial, this.#partialLength, start);
    this.#partialLength = total;
  }

  #check(length: number): void {
    if (length > this.maxLineBytes) {
      throw new ProtocolError('PH_ERR_PROTOCOL_LINE_TOO_LONG', `line longer than ${this.maxLineBytes} bytes`);
    }
  }
}
