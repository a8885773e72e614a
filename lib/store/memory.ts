import { RingQueue } from '../util/ring-queue.js';
import { ENQUEUED, MAILBOX_FULL, STORE_UNAVAILABLE, type EnqueueResult, type MailboxStore, type StoreLimits, type StoreStats, type StoredMessage } from './store.js';

// What a stored message costs besides its bytes (its object, its Buffer, its ring slot),
// and what a mailbox costs (its map entry and ring), as counted against maxBytes.
export const MESSAGE_OVERHEAD_BYTES = 160;
export const MAILBOX_OVERHEAD_BYTES = 200;

export interface MemoryStoreOptions extends StoreLimits {
  /** Past this many bytes held (messages, senders, mailboxes), COMPOSE fails. Default: no cap. */
  readonly maxBytes?: number;
}

/** Mailboxes in memory: fast, and gone when the process ends. */
export class MemoryStore implements MailboxStore {
  readonly #limits: StoreLimits;
  readonly #maxBytes: number;
  #bytes = 0;
  // An emptied mailbox is deleted, so names that were only ever written to once do not
  // stay in the map forever.
  readonly #boxes = new Map<string, RingQueue<StoredMessage>>();
  // Kept as messages come and go: adding up every message at each metrics scrape would
  // cost as much as there are messages.
  #messages = 0;

  constructor(options: MemoryStoreOptions) {
    this.#limits = options;
    this.#maxBytes = options.maxBytes ?? Infinity;
  }

  /** Bytes held, as counted against maxBytes. */
  get bytes(): number {
    return this.#bytes;
  }

  batch<T>(work: () => T): T {
    return work();
  }

  enqueue(user: string, message: StoredMessage): EnqueueResult {
    let box = this.#boxes.get(user);
    if ((box?.size ?? 0) >= this.#limits.maxMessagesPerUser) return MAILBOX_FULL;
    const cost = messageCost(message) + (box === undefined ? mailboxCost(user) : 0);
    if (this.#bytes + cost > this.#maxBytes) return STORE_UNAVAILABLE;
    if (box === undefined) {
      box = new RingQueue<StoredMessage>();
      this.#boxes.set(user, box);
    }
    // A copy: the caller's bytes are a view into a batch buffer that must not be kept.
    box.push({ from: message.from, body: Buffer.from(message.body) });
    this.#bytes += cost;
    this.#messages++;
    return ENQUEUED;
  }

  dequeue(user: string): StoredMessage | null {
    const box = this.#boxes.get(user);
    if (box === undefined) return null;
    const message = box.shift() as StoredMessage;
    this.#bytes -= messageCost(message);
    this.#messages--;
    if (box.size === 0) {
      this.#boxes.delete(user);
      this.#bytes -= mailboxCost(user);
    }
    return message;
  }

  count(user: string): number {
    return this.#boxes.get(user)?.size ?? 0;
  }

  /** `bytes` is what counts against maxBytes: messages with their bookkeeping, and mailboxes. */
  stats(): StoreStats {
    return { messages: this.#messages, bytes: this.#bytes };
  }

  close(): void {
    this.#boxes.clear();
    this.#messages = 0;
    this.#bytes = 0;
  }
}

function messageCost(message: StoredMessage): number {
  return message.body.length + message.from.length + MESSAGE_OVERHEAD_BYTES;
}

function mailboxCost(user: string): number {
  return user.length + MAILBOX_OVERHEAD_BYTES;
}
