import type { MessagePort } from 'node:worker_threads';
import { ByteRing } from './ring.js';
import { RingChannel, type RingBuffers, postBatch } from './ring-channel.js';

/** What applies a shard's batches: its BatchRunner (host.ts). */
export interface BatchTaker {
  /** Answers within run(): a batch read in place need not outlive the call. */
  readonly synchronous: boolean;
  run(batch: Uint8Array, link: number, deliver: (reply: Buffer) => void): void;
}

/**
 * One end of the channel between one acceptor thread and one shard: request batches one
 * way, reply batches the other. On a pair of SharedArrayBuffer rings when it has them
 * (RingChannel), else as transferred messages on the port.
 *
 * The channel owns the port and closes it. The port may carry other messages as well (a
 * shard's control port does), so the owner calls start() and hands over the batches that
 * come on the port (fromPort), or calls listen() when the port carries nothing else. When the other end
 * closes the port, an acceptor still takes what its ring holds: complete replies written
 * by a shard that has since died or closed are answers all the same. A shard does not:
 * an acceptor closes only once every batch it sent is answered, so what is left is a
 * dead acceptor's, for connections that are gone.
 */
export class BatchChannel {
  readonly #port: MessagePort;
  readonly #rings: RingChannel | null;
  readonly #receive: (batch: Buffer, inRing: boolean) => void;
  #closed = false;

  /** `receive(batch, inRing)`: when `inRing` the batch is a view of the ring, valid only during the call. */
  constructor(port: MessagePort, rings: RingBuffers | null, side: 'acceptor' | 'shard', receive: (batch: Buffer, inRing: boolean) => void) {
    this.#port = port;
    this.#receive = receive;
    if (rings === null) {
      this.#rings = null;
    } else {
      const requests = new ByteRing(rings.requests);
      const replies = new ByteRing(rings.replies);
      this.#rings = side === 'acceptor' ? new RingChannel(requests, replies, port, receive) : new RingChannel(replies, requests, port, receive);
    }
    port.once('close', () => {
      // An acceptor takes the replies a shard left (answers all the same); a shard drops
      // the batches of an acceptor that is gone: its connections went with it, and a READ
      // among them would take a message that nobody can be given.
      if (side === 'acceptor') this.drain();
      this.close();
    });
  }

  /**
   * Starts taking batches from the incoming ring (which may hold some already: they are
   * taken at once, so the channel must be in place for their replies).
   */
  start(): this {
    void this.#rings?.watch();
    return this;
  }

  /** start(), and every message on the port is a batch (a link's port carries nothing else). */
  listen(): this {
    this.#port.on('message', (message: Uint8Array) => this.fromPort(message));
    return this.start();
  }

  /** Sends a batch; its buffer may be transferred away. Nothing is sent once closed. */
  send(batch: Buffer): void {
    if (this.#closed) return;
    if (this.#rings !== null) this.#rings.send(batch);
    else postBatch(this.#port, batch);
  }

  /** A batch that came on the port. */
  fromPort(message: Uint8Array): void {
    if (this.#closed) return;
    const batch = Buffer.from(message.buffer, message.byteOffset, message.byteLength);
    if (this.#rings !== null) this.#rings.fromPort(batch);
    else this.#receive(batch, false);
  }

  /** Takes the batches the incoming ring holds now; returns how many. */
  drain(): number {
    return this.#rings?.drain() ?? 0;
  }

  /** Wakes both ends' watches (see RingChannel.nudge). A port loses nothing: nothing to do. */
  nudge(): void {
    this.#rings?.nudge();
  }

  /** Settles once no batch sent waits for room in a ring (or the channel is closed). */
  flushed(): Promise<void> {
    return this.#rings?.flushed() ?? Promise.resolve();
  }

  /** Stops both ways at once, and closes the port: a batch still waiting for room is dropped (see flushed()). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#rings?.close();
    this.#port.close();
  }
}

/** An acceptor's end: each reply batch goes to `reply` in a buffer that outlives the ring. */
export function acceptorEnd(port: MessagePort, rings: RingBuffers | null, reply: (batch: Buffer) => void): BatchChannel {
  // A reply read from the ring is copied out (into Node's pool when small): reply slots
  // keep ranges of it until their connections have written them, long after the ring
  // has moved on.
  return new BatchChannel(port, rings, 'acceptor', (batch, inRing) => reply(inRing ? Buffer.from(batch) : batch));
}

/** A shard's end for link `link`: each request batch goes to `taker`, its reply back on the channel. */
export function shardEnd(port: MessagePort, rings: RingBuffers | null, taker: BatchTaker, link: number): BatchChannel {
  const deliver = (reply: Buffer): void => channel.send(reply);
  // A batch read from the ring is valid only during the call: an asynchronous core
  // (Redis) gets a copy that outlives it (pooled when small: it is never transferred).
  const channel: BatchChannel = new BatchChannel(port, rings, 'shard', (batch, inRing) =>
    taker.run(inRing && !taker.synchronous ? Buffer.from(batch) : batch, link, deliver),
  );
  return channel;
}
