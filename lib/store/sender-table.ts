// Senders no message uses any more, kept at most before they are forgotten in a sweep
// (and at most as many as are in use).
const SWEEP_AT = 1024;

/**
 * Sender names interned per store: a stored message keeps its sender as a small id, not
 * a copy of the name (up to 256 bytes). Each id counts the messages that use it. A name
 * no message uses any more is forgotten and its id reused, so the table holds only the
 * senders of stored messages, give or take the unused ones not yet swept: a sender
 * whose every message is read at once (a chat) keeps its id instead of being forgotten
 * and interned again for each message.
 */
export class SenderTable {
  readonly #ids = new Map<string, number>();
  readonly #names: string[] = [];
  readonly #bytes: Buffer[] = [];
  readonly #uses: number[] = [];
  readonly #free: number[] = [];
  #unused = 0;

  /** Senders with at least one stored message. */
  get size(): number {
    return this.#ids.size - this.#unused;
  }

  /** The id of `name` for one more stored message. */
  acquire(name: string): number {
    let id = this.#ids.get(name);
    if (id === undefined) {
      id = this.#free.pop() ?? this.#names.length;
      this.#ids.set(name, id);
      this.#names[id] = name;
      this.#bytes[id] = Buffer.from(name, 'latin1');
      this.#uses[id] = 1;
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
    if (++this.#unused > SWEEP_AT && this.#unused * 2 > this.#ids.size) this.#sweep();
  }

  #sweep(): void {
    for (const [name, id] of this.#ids) {
      if (this.#uses[id] !== 0) continue;
      this.#ids.delete(name);
      this.#names[id] = '';
      this.#bytes[id] = EMPTY;
      this.#free.push(id);
    }
    this.#unused = 0;
  }
}

const EMPTY = Buffer.alloc(0);
