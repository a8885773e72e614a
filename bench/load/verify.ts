import { BodyCodec } from './body.js';
import { type ErrorCounts, type ErrorKind, OUTCOME_FAILED, OUTCOME_PENDING, OUTCOME_SENT, emptyErrorCounts } from './types.js';

const MAX_SAMPLES = 10;
const ZERO = 0x30;

/** Error counts by kind, with the first few described (built lazily: the hot path only counts). */
export class ErrorLog {
  readonly counts: ErrorCounts = emptyErrorCounts();
  readonly samples: string[] = [];

  add(kind: ErrorKind, describe?: () => string, n = 1): void {
    this.counts[kind] += n;
    if (this.samples.length < MAX_SAMPLES) this.samples.push(describe === undefined ? kind : `${kind}: ${describe()}`);
  }

  merge(counts: ErrorCounts, samples: readonly string[]): void {
    for (const kind of Object.keys(counts) as ErrorKind[]) this.counts[kind] += counts[kind];
    for (const sample of samples) if (this.samples.length < MAX_SAMPLES) this.samples.push(sample);
  }

  get total(): number {
    let total = 0;
    for (const kind of Object.keys(this.counts) as ErrorKind[]) total += this.counts[kind];
    return total;
  }
}

/** How often each message (composer, seq) was read; grows as sequence numbers do. */
export class ReadLedger {
  readonly counts: (Uint8Array | null)[];

  constructor(composers: number) {
    this.counts = new Array<Uint8Array | null>(composers).fill(null);
  }

  add(composer: number, seq: number): void {
    let counts = this.counts[composer] ?? null;
    if (counts === null || seq >= counts.length) {
      let size = counts === null ? 1024 : counts.length;
      while (size <= seq) size *= 2;
      const grown = new Uint8Array(size);
      if (counts !== null) grown.set(counts);
      this.counts[composer] = counts = grown;
    }
    // Saturates: anything above 1 is already a duplicate.
    if ((counts[seq] as number) < 255) counts[seq] = (counts[seq] as number) + 1;
  }

  merge(other: readonly (Uint8Array | null)[]): void {
    for (let composer = 0; composer < other.length; composer++) {
      const theirs = other[composer];
      if (theirs === null || theirs === undefined) continue;
      for (let seq = 0; seq < theirs.length; seq++) {
        const n = theirs[seq] as number;
        for (let i = 0; i < n; i++) this.add(composer, seq);
      }
    }
  }
}

/** What a trailing zero-filled ledger does not hide: a read of a sequence never sent is unknown. */
export interface FinalCheck {
  /** COMPOSEs answered MESSAGE SENT / MESSAGE FAILED, and never answered. */
  sent: number;
  failed: number;
  unanswered: number;
  /** Messages read (run and drain), counting each read of a duplicate. */
  read: number;
  lost: number;
  duplicates: number;
  unknown: number;
  failedButDelivered: number;
}

/**
 * Checks each message a READ returns against what the harness composed: the body must
 * parse as an id of this run, it must come from the mailbox it was sent to, the sender
 * line must name its composer, and per composer a mailbox hands messages out in order.
 */
export class Verifier {
  readonly errors = new ErrorLog();
  readonly ledger: ReadLedger;
  readonly codec: BodyCodec;
  readonly #connections: number;
  readonly #senderPrefix: Buffer;
  messagesRead = 0;

  constructor(connections: number, messageBytes: number, prefix: string) {
    this.#connections = connections;
    this.codec = new BodyCodec(messageBytes);
    this.ledger = new ReadLedger(connections);
    this.#senderPrefix = Buffer.from(`${prefix}c`);
  }

  /**
   * reader: the recipient index whose mailbox was read. lastSeq: per composer, the last
   * sequence number this mailbox handed out (-1 at first), for the FIFO check.
   */
  checkRead(buf: Buffer, senderStart: number, senderEnd: number, bodyStart: number, bodyEnd: number, reader: number, lastSeq: Int32Array): void {
    this.messagesRead++;
    const codec = this.codec;
    if (!codec.decode(buf, bodyStart, bodyEnd) || codec.composer >= this.#connections) {
      this.errors.add('unknownId', () => `mailbox ${reader} returned ${JSON.stringify(buf.toString('latin1', bodyStart, Math.min(bodyEnd, bodyStart + 80)))}`);
      return;
    }
    const { composer, seq, recipient } = codec;
    if (recipient !== reader) {
      this.errors.add('wrongRecipient', () => `message ${composer}:${seq} for recipient ${recipient} read from mailbox ${reader}`);
    }
    if (senderStart >= 0 && !this.#senderIs(buf, senderStart, senderEnd, composer)) {
      this.errors.add('wrongSender', () => `message ${composer}:${seq} came with sender ${JSON.stringify(buf.toString('latin1', senderStart, Math.min(senderEnd, senderStart + 80)))}`);
    }
    const last = lastSeq[composer] as number;
    if (seq < last) {
      this.errors.add('outOfOrder', () => `mailbox ${reader} handed out ${composer}:${seq} after ${composer}:${last}`);
    } else {
      lastSeq[composer] = seq;
    }
    this.ledger.add(composer, seq);
  }

  #senderIs(buf: Buffer, start: number, end: number, composer: number): boolean {
    const prefix = this.#senderPrefix;
    const digitsStart = start + prefix.length;
    if (digitsStart >= end || prefix.compare(buf, start, digitsStart) !== 0) return false;
    if (end - digitsStart > 1 && buf[digitsStart] === ZERO) return false;
    let n = 0;
    for (let at = digitsStart; at < end; at++) {
      const digit = (buf[at] as number) - ZERO;
      if (digit < 0 || digit > 9 || at - digitsStart > 9) return false;
      n = n * 10 + digit;
    }
    return n === composer;
  }

  /**
   * After the drain: every MESSAGE SENT was read exactly once, no MESSAGE FAILED was read,
   * and nothing was read that the harness did not compose. Counts what breaks into errors.
   */
  finalCheck(outcomes: readonly Uint8Array[]): FinalCheck {
    const check: FinalCheck = { sent: 0, failed: 0, unanswered: 0, read: 0, lost: 0, duplicates: 0, unknown: 0, failedButDelivered: 0 };
    for (let composer = 0; composer < this.#connections; composer++) {
      const fates = outcomes[composer] ?? new Uint8Array(0);
      const reads = this.ledger.counts[composer] ?? new Uint8Array(0);
      const end = Math.max(fates.length, reads.length);
      for (let seq = 0; seq < end; seq++) {
        const n = seq < reads.length ? (reads[seq] as number) : 0;
        check.read += n;
        if (seq >= fates.length) {
          if (n > 0) {
            check.unknown += n;
            this.errors.add('unknownId', () => `message ${composer}:${seq} was read but never composed`, n);
          }
          continue;
        }
        const fate = fates[seq];
        if (fate === OUTCOME_SENT) {
          check.sent++;
          if (n === 0) {
            check.lost++;
            this.errors.add('lost', () => `message ${composer}:${seq} was answered MESSAGE SENT but never read`);
          }
        } else if (fate === OUTCOME_FAILED) {
          check.failed++;
          if (n > 0) {
            check.failedButDelivered++;
            this.errors.add('failedButDelivered', () => `message ${composer}:${seq} was answered MESSAGE FAILED but was read`);
          }
        } else if (fate === OUTCOME_PENDING) {
          // Never answered (already an error); it may or may not have been stored.
          check.unanswered++;
        }
        if (n > 1) {
          check.duplicates += n - 1;
          this.errors.add('duplicate', () => `message ${composer}:${seq} was read ${n} times`, n - 1);
        }
      }
    }
    return check;
  }
}
