import type { MessagePort } from 'node:worker_threads';
import { transferable } from '../util/bytes.js';
import { ByteRing, RING_ELSEWHERE, RING_EMPTY } from './ring.js';

/** The SharedArrayBuffers of a shard's two rings, handed to its thread when it starts. */
export interface RingBuffers {
  readonly requests: SharedArrayBuffer;
  readonly replies: SharedArrayBuffer;
}

// Big enough for a busy batch of in-memory commands many times over; a bigger batch
// travels on the port (after an ELSEWHERE mark in the ring, so order holds). RSS grows
// by the pages a ring has cycled through, so it is not made bigger than it needs.
export const REQUEST_RING_BYTES = 1 << 20;
export const REPLY_RING_BYTES = 1 << 20;

// A backlog is offered again after this long, doubling (to the cap) while the other side
// makes no room: it may be starting, backing off after a crash, or gone.
const FIRST_RETRY_MS = 1;
const MAX_RETRY_MS = 64;

/**
 * One end of a shard's pair of rings, the same code on both sides: it writes outgoing
 * batches to one ring and hands incoming ones, read from the other, to `receive`. A
 * batch too big for its ring goes on the port, announced by a mark in the ring, so
 * batches still arrive in order; a ring that is full keeps its batches in a backlog,
 * written as the other side makes room (which it does whenever it answers).
 *
 * The incoming ring is watched with Atomics.waitAsync: a side that is busy finds new
 * batches without being woken; one that sleeps is woken by the writer.
 */
export class RingChannel {
  readonly #out: ByteRing;
  readonly #in: ByteRing;
  readonly #port: MessagePort;
  readonly #receive: (batch: Buffer, inRing: boolean) => void;
  readonly #backlog: Buffer[] = [];
  // Set while an ELSEWHERE mark was read: nothing more is taken from the ring until the
  // batch it announced has come on the port; it settles then.
  #portArrived: Promise<void> | null = null;
  #arrived: (() => void) | null = null;
  #closed = false;
  #retry: NodeJS.Timeout | null = null;
  #retryMs = FIRST_RETRY_MS;
  #whenFlushed: (() => void)[] = [];

  /**
   * `receive(batch, inRing)` gets each incoming batch; when `inRing` the batch is a view
   * of the ring, valid only during the call (copy what is kept).
   */
  constructor(out: ByteRing, incoming: ByteRing, port: MessagePort, receive: (batch: Buffer, inRing: boolean) => void) {
    this.#out = out;
    this.#in = incoming;
    this.#port = port;
    this.#receive = receive;
  }

  /** Sends a batch; the buffer may be transferred away (when it goes on the port). */
  send(batch: Buffer): void {
    if (this.#backlog.length > 0 || !this.#offer(batch)) {
      this.#backlog.push(batch);
      // The other side makes room as it reads, and this side then offers the backlog
      // again (drain()); the retry covers a side that reads without answering.
      this.#scheduleRetry();
    }
  }

  /** Settles once the backlog is empty: every batch sent is in the ring or on the port (or the channel is closed). */
  flushed(): Promise<void> {
    if (this.#backlog.length === 0 || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#whenFlushed.push(resolve));
  }

  /** A batch that came on the port (announced by a mark in the ring). */
  fromPort(batch: Buffer): void {
    // The port may outrun the ring: what was written before the mark goes first.
    if (this.#portArrived === null) this.drain();
    if (this.#portArrived === null) throw new Error('a batch came on the port with no mark for it in the ring');
    this.#arrived?.();
    this.#arrived = null;
    this.#portArrived = null;
    this.#receive(batch, false);
    this.drain();
  }

  /** Takes every batch waiting in the incoming ring; returns how many. */
  drain(): number {
    let taken = 0;
    const ring = this.#in;
    while (this.#portArrived === null && !this.#closed) {
      const batch = ring.read();
      if (batch === RING_EMPTY) break;
      if (batch === RING_ELSEWHERE) {
        this.#portArrived = new Promise((resolve) => (this.#arrived = resolve));
        break;
      }
      try {
        this.#receive(batch, true);
      } finally {
        ring.release();
      }
      taken++;
    }
    // Room was made: offer what waits for it (an empty backlog has no one waiting either).
    if (taken > 0 && this.#backlog.length > 0) this.#flushBacklog();
    return taken;
  }

  /**
   * Drains the incoming ring whenever something arrives, until close(). (Spinning a
   * while before sleeping, to be found awake by the next batch, was measured: on 2
   * cores it took as much CPU from the other threads as the wake-ups it saved.)
   */
  async watch(): Promise<void> {
    while (!this.#closed) {
      this.drain();
      if (this.#portArrived !== null) {
        // The ring may hold more, but the next batch comes on the port: wait for it.
        await this.#portArrived;
        continue;
      }
      if (this.#closed) break;
      const wake = this.#in.sleep();
      if (wake !== null) await wake;
    }
  }

  /**
   * For a peer that has not answered for long: wakes it, in case it slept through a batch,
   * and wakes this side's own watch, in case it slept through the answer (taking what
   * waits is not enough: a watch left asleep with its flag cleared is never woken again).
   */
  nudge(): void {
    if (this.#closed) return;
    this.#out.wake();
    this.#in.wake();
  }

  /** Stops reading and writing; a backlog still waiting is dropped (await flushed() first to keep it). */
  close(): void {
    this.#closed = true;
    this.#arrived?.();
    if (this.#retry !== null) clearTimeout(this.#retry);
    this.#backlog.length = 0;
    this.#settleFlushed();
    this.#in.wake();
  }

  #flushBacklog(): void {
    const backlog = this.#backlog;
    const before = backlog.length;
    while (backlog.length > 0 && this.#offer(backlog[0] as Buffer)) backlog.shift();
    if (backlog.length < before) this.#retryMs = FIRST_RETRY_MS;
    if (backlog.length === 0) this.#settleFlushed();
    else this.#scheduleRetry();
  }

  #scheduleRetry(): void {
    if (this.#retry !== null || this.#closed) return;
    const delay = this.#retryMs;
    this.#retryMs = Math.min(delay * 2, MAX_RETRY_MS);
    this.#retry = setTimeout(() => {
      this.#retry = null;
      this.#flushBacklog();
    }, delay);
  }

  #settleFlushed(): void {
    for (const resolve of this.#whenFlushed.splice(0)) resolve();
  }

  #offer(batch: Buffer): boolean {
    const ring = this.#out;
    if (batch.length <= ring.maxMessage) return ring.write(batch, 0, batch.length);
    if (!ring.markElsewhere()) return false;
    postBatch(this.#port, batch);
    return true;
  }
}

/** Sends a batch on a port, its bytes transferred (a slice of Node's pool is copied first). */
export function postBatch(port: MessagePort, batch: Buffer): void {
  const own = transferable(batch);
  port.postMessage(own, [own.buffer as ArrayBuffer]);
}

/** A fresh pair of rings for a shard. */
export function createRingBuffers(): RingBuffers {
  return { requests: ByteRing.create(REQUEST_RING_BYTES).buffer, replies: ByteRing.create(REPLY_RING_BYTES).buffer };
}
