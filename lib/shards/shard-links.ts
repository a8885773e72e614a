import type { MessagePort } from 'node:worker_threads';
import type { LinkEnd } from './messages.js';
import { ByteRing } from './ring.js';
import { RingChannel } from './ring-channel.js';

/** What applies the batches: the shard's BatchRunner (host.ts). */
export interface LinkRunner {
  /** Answers within run(): a batch read in place need not outlive the call. */
  readonly synchronous: boolean;
  run(batch: Uint8Array, link: number, deliver: (reply: Buffer) => void): void;
  /** The link is gone for good: its journal can go. */
  forget(link: number): void;
}

interface ServedLink {
  readonly port: MessagePort;
  /** Null when batches travel on the port. */
  readonly channel: RingChannel | null;
  closed: boolean;
}

/**
 * The channels a shard serves besides the one it was started with: one per further
 * acceptor thread. Every batch, whichever channel it came on, goes through the shard's
 * one BatchRunner, so batches are applied one at a time and each mailbox stays a FIFO
 * queue without locks; each reply goes back on the channel its batch came on, tagged
 * in the journal with that channel's link.
 */
export class ShardLinks {
  readonly #runner: LinkRunner;
  readonly #links = new Map<number, ServedLink>();

  constructor(runner: LinkRunner) {
    this.#runner = runner;
  }

  attach({ link, port, rings }: LinkEnd): void {
    this.#drop(link);
    const runner = this.#runner;
    if (rings === null) {
      const served: ServedLink = { port, channel: null, closed: false };
      port.on('message', (batch: Uint8Array) =>
        runner.run(batch, link, (reply) => {
          if (!served.closed) port.postMessage(reply, [reply.buffer as ArrayBuffer]);
        }),
      );
      this.#links.set(link, served);
      return;
    }
    const deliver = (reply: Buffer): void => {
      if (!served.closed) channel.send(reply);
    };
    // A batch read from the ring is valid only during the call: an asynchronous core
    // (Redis) gets a copy that outlives it.
    const channel: RingChannel = new RingChannel(new ByteRing(rings.replies), new ByteRing(rings.requests), port, (batch, inRing) =>
      runner.run(inRing && !runner.synchronous ? Buffer.from(batch) : batch, link, deliver),
    );
    const served: ServedLink = { port, channel, closed: false };
    port.on('message', (batch: Uint8Array) => channel.fromPort(Buffer.from(batch.buffer, batch.byteOffset, batch.byteLength)));
    this.#links.set(link, served);
    void channel.watch();
  }

  /** Stops serving a link (its acceptor thread is gone): what its ring still holds is dropped, and its journal. */
  detach(link: number): void {
    if (this.#drop(link)) this.#runner.forget(link);
  }

  /** Takes every batch the links' rings hold now; returns how many. */
  drain(): number {
    let taken = 0;
    for (const served of this.#links.values()) taken += served.channel?.drain() ?? 0;
    return taken;
  }

  /** Closes every link's channel (the shard is closing). */
  close(): void {
    for (const link of [...this.#links.keys()]) this.#drop(link);
  }

  #drop(link: number): boolean {
    const served = this.#links.get(link);
    if (served === undefined) return false;
    this.#links.delete(link);
    served.closed = true;
    served.channel?.close();
    served.port.close();
    return true;
  }
}
