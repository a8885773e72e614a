import { RingQueue } from '../util/ring-queue.js';
import { ENQUEUED, MAILBOX_FULL, type EnqueueResult, type MailboxStore, type StoreLimits, type StoreStats, type StoredMessage } from './store.js';

/** Mailboxes in memory: fast, and gone when the process ends. */
export class MemoryStore implements MailboxStore {
  readonly #limits: StoreLimits;
  // An emptied mailbox is deleted, so names that were only ever written to once do not
  // stay in the map forever.
  readonly #boxes = new Map<string, RingQueue<StoredMessage>>();
  // Kept as messages come and go: adding up every message at each metrics scrape would
  // cost as much as there are messages.
  #messages = 0;
  #bytes = 0;

  constructor(limits: StoreLimits) {
    this.#limits = limits;
  }

  batch<T>(work: () => T): T {
    return work();
  }

  enqueue(user: string, message: StoredMessage): EnqueueResult {
    let box = this.#boxes.get(user);
    if ((box?.size ?? 0) >= this.#limits.maxMessagesPerUser) return MAILBOX_FULL;
    if (box === undefined) {
      box = new RingQueue<StoredMessage>();
      this.#boxes.set(user, box);
    }
    // A copy: the caller's bytes are a view into a batch buffer that must not be kept.
    box.push({ from: message.from, body: Buffer.from(message.body) });
    this.#messages++;
    this.#bytes += message.from.length + message.body.length;
    return ENQUEUED;
  }

  dequeue(user: string): StoredMessage | null {
    const box = this.#boxes.get(user);
    if (box === undefined) return null;
    const message = box.shift() as StoredMessage;
    if (box.size === 0) this.#boxes.delete(user);
    this.#messages--;
    this.#bytes -= message.from.length + message.body.length;
    return message;
  }

  count(user: string): number {
    return this.#boxes.get(user)?.size ?? 0;
  }

  /** `bytes` counts senders and bodies, not the bookkeeping around them. */
  stats(): StoreStats {
    return { messages: this.#messages, bytes: this.#bytes };
  }

  close(): void {
    this.#boxes.clear();
    this.#messages = 0;
    this.#bytes = 0;
  }
}
