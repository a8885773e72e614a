import { type BatchChannel, type BatchTaker, shardEnd } from './batch-channel.js';
import type { LinkEnd } from './messages.js';

/** What applies the batches: the shard's BatchRunner (host.ts). */
export interface LinkRunner extends BatchTaker {
  /** The link is gone for good: its journal can go. */
  forget(link: number): void;
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
  readonly #links = new Map<number, BatchChannel>();

  constructor(runner: LinkRunner) {
    this.#runner = runner;
  }

  attach({ link, port, rings }: LinkEnd): void {
    this.#links.get(link)?.close();
    this.#links.set(link, shardEnd(port, rings, this.#runner, link).listen());
  }

  /** Stops serving a link (its acceptor thread is gone): what its ring still holds is dropped, and its journal. */
  detach(link: number): void {
    const channel = this.#links.get(link);
    if (channel === undefined) return;
    this.#links.delete(link);
    channel.close();
    this.#runner.forget(link);
  }

  /** Takes every batch the links' rings hold now; returns how many. */
  drain(): number {
    let taken = 0;
    for (const channel of this.#links.values()) taken += channel.drain();
    return taken;
  }

  /** Settles once no link's reply waits for room in its ring. */
  async flushed(): Promise<void> {
    await Promise.all([...this.#links.values()].map((channel) => channel.flushed()));
  }

  /** Closes every link's channel (the shard is closing). */
  close(): void {
    for (const channel of this.#links.values()) channel.close();
    this.#links.clear();
  }
}
