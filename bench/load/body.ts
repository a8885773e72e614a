// Message bodies carry their identity so every READ can be checked: `<composer>:<seq>:<recipient>`
// in decimal, padded with '.' to the requested size. No spaces, so Redis inline commands
// take them as one argument; no line breaks, so pigeonhole takes them as one line.

const COLON = 0x3a;
const DOT = 0x2e;
const ZERO = 0x30;
// Longer numbers than this are garbage, not ids: it keeps the parse within safe integers.
const MAX_DIGITS = 15;

export function decimalDigits(n: number): number {
  let digits = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    digits++;
  }
  return digits;
}

/** Writes n in decimal at off; returns the offset after it. */
export function writeDecimal(buf: Buffer, off: number, n: number): number {
  const end = off + decimalDigits(n);
  let at = end;
  do {
    buf[--at] = ZERO + (n % 10);
    n = Math.floor(n / 10);
  } while (n > 0);
  return end;
}

export class BodyCodec {
  readonly messageBytes: number;
  readonly #pad: Buffer;
  // Set by decode().
  composer = 0;
  seq = 0;
  recipient = 0;

  constructor(messageBytes: number) {
    this.messageBytes = messageBytes;
    this.#pad = Buffer.alloc(messageBytes, DOT);
  }

  /** A body is exactly messageBytes long unless its id alone is longer. */
  length(composer: number, seq: number, recipient: number): number {
    const idLength = decimalDigits(composer) + decimalDigits(seq) + decimalDigits(recipient) + 2;
    return idLength > this.messageBytes ? idLength : this.messageBytes;
  }

  write(buf: Buffer, off: number, composer: number, seq: number, recipient: number): number {
    const start = off;
    off = writeDecimal(buf, off, composer);
    buf[off++] = COLON;
    off = writeDecimal(buf, off, seq);
    buf[off++] = COLON;
    off = writeDecimal(buf, off, recipient);
    const padding = this.messageBytes - (off - start);
    if (padding > 0) off += this.#pad.copy(buf, off, 0, padding);
    return off;
  }

  /** Parses a body; false when it is not exactly a body this codec would write. */
  decode(buf: Buffer, start: number, end: number): boolean {
    let at = start;
    let composer = 0;
    let seq = 0;
    let recipient = 0;
    let digits = 0;
    for (let field = 0; field < 3; field++) {
      let n = 0;
      digits = 0;
      while (at < end) {
        const c = buf[at] as number;
        if (c < ZERO || c > ZERO + 9) break;
        n = n * 10 + (c - ZERO);
        at++;
        if (++digits > MAX_DIGITS) return false;
      }
      // Leading zeros would mean two spellings of one id.
      if (digits === 0 || (digits > 1 && buf[at - digits] === ZERO)) return false;
      if (field === 0) composer = n;
      else if (field === 1) seq = n;
      else recipient = n;
      if (field < 2) {
        if (at >= end || buf[at] !== COLON) return false;
        at++;
      }
    }
    const length = end - start;
    if (length !== this.length(composer, seq, recipient)) return false;
    const padding = end - at;
    if (padding > 0 && this.#pad.compare(buf, at, end, 0, padding) !== 0) return false;
    this.composer = composer;
    this.seq = seq;
    this.recipient = recipient;
    return true;
  }
}

/** Names: recipient r < connections is connection r's own user; the others are the wider users. */
export function userName(prefix: string, connections: number, recipient: number): string {
  return recipient < connections ? `${prefix}c${recipient}` : `${prefix}u${recipient - connections}`;
}
