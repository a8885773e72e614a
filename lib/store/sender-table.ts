import { sweepDue, worthSweepingAtCap } from './sweep.js';

/**
 * What one sender costs in memory besides its name, as counted against a store's cap:
 * its map entry, string header, Buffer object and backing store, and array slots
 * (about 270 bytes of V8 heap and 100 of malloc'd bookkeeping on Node 20, measured with
 * 100,000 senders).
 */
export const SENDER_OVERHEAD_BYTES = 400;

/** What the table counts for a sender it does not hold yet: its name is held twice (the string, and its bytes). */
export function senderCost(name: string): number {
  return SENDER_OVERHEAD_BYTES + 2 * name.length;
}

/**
 * Sender names interned per store: a stored message keeps its sender as a small id, not
 * a copy of the name (up to 256 bytes). Each id counts the messages that use it. A name
 * no message uses any more is forgotten and its id reused, so the table holds only the
 * senders of stored messages, give or take the unused ones not yet swept: a sender
 * whose every message is read at once (a chat) keeps its id instead of being forgotten
 * and interned again for each message.
 *
 * The table counts what its senders cost (`heldBytes`, unused ones included until they
 * are swept), so a store can count senders against its cap.
 */
export class SenderTable {
  readonly #ids = new Map<string, number>();
  readonly #names: string[] = [];
  readonly #bytes: Buffer[] = [];
  readonly #uses: number[] = [];
  readonly #free: number[] = [];
  #unused = 0;
  #heldBytes = 0;

  /** Senders with at least one stored message. */
  get size(): number {
    return this.#ids.size - this.#unused;
  }

  /** What the senders held cost, by senderCost(), unused ones not yet swept included. */
  get heldBytes(): number {
    return this.#heldBytes;
  }

  /** The id of `name` while the table holds it (used or not yet swept), else -1. */
  find(name: string): number {
    return this.#ids.get(name) ?? -1;
  }

  /** The id of `name` for one more stored message; `known` is find(name), when the caller has it. */
  acquire(name: string, known: number = this.find(name)): number {
    let id = known;
    if (id === -1) {
      id = this.#free.pop() ?? this.#names.length;
      this.#ids.set(name, id);
      this.#names[id] = name;
      // A buffer of its own: a slice of Node's shared pool would keep a whole 8 KiB
      // block alive for as long as this sender stays.
      const bytes = Buffer.allocUnsafeSlow(name.length);
      bytes.write(name, 0, 'latin1');
      this.#bytes[id] = bytes;
      this.#uses[id] = 1;
      this.#heldBytes += senderCost(name);
      return id;
    }
    const uses = this.#uses[id] as number;
    if (uses === 0) this.#unused--;
    this.#uses[id] = uses + 1;
    return id;
  }

  name(id: number): string {
    return this.#names[id] as string;
  }

  /** The name's bytes (names are ASCII: one byte per character). */
  bytes(id: number): Buffer {
    return this.#bytes[id] as Buffer;
  }

  /** One message of sender `id` is gone. */
  release(id: number): void {
    const uses = (this.#uses[id] as number) - 1;
    this.#uses[id] = uses;
    if (uses > 0) return;
    if (sweepDue(++this.#unused, this.#ids.size)) this.#sweep();
  }

  /**
   * Forgets the unused senders now, however few, when they are at least half of the
   * table. For a store at its cap. True when it freed anything.
   */
  reclaim(): boolean {
    if (!worthSweepingAtCap(this.#unused, this.#ids.size)) return false;
    this.#sweep();
    return true;
  }

  #sweep(): void {
    for (const [name, id] of this.#ids) {
      if (this.#uses[id] !== 0) continue;
      this.#ids.delete(name);
      this.#heldBytes -= senderCost(name);
      this.#names[id] = '';
      this.#bytes[id] = EMPTY;
      this.#free.push(id);
    }
    this.#unused = 0;
  }
}

const EMPTY = Buffer.alloc(0);
