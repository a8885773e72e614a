/**
 * A FIFO deque on a power-of-two ring buffer: O(1) push and shift with no
 * `Array#shift` copying, as in Node's lib/internal/fixed_queue.js. It grows by doubling
 * and shrinks by half when a quarter full, so a queue that once held many items does
 * not keep their slots forever; never below `minCapacity`, so a queue that fills and
 * empties every turn (a batch's pending replies) is not resized every turn.
 */
export class RingQueue<T> {
  readonly #minCapacity: number;
  #items: (T | undefined)[];
  #head = 0;
  #size = 0;

  /** `minCapacity` must be a power of two. */
  constructor(minCapacity = 4) {
    if (minCapacity < 1 || (minCapacity & (minCapacity - 1)) !== 0) throw new RangeError(`minCapacity must be a power of two, got ${minCapacity}`);
    this.#minCapacity = minCapacity;
    this.#items = new Array<T | undefined>(minCapacity);
  }

  get size(): number {
    return this.#size;
  }

  push(item: T): void {
    if (this.#size === this.#items.length) this.#resize(this.#items.length * 2);
    this.#items[(this.#head + this.#size) & (this.#items.length - 1)] = item;
    this.#size++;
  }

  shift(): T | undefined {
    if (this.#size === 0) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) & (this.#items.length - 1);
    this.#size--;
    if (this.#items.length > this.#minCapacity && this.#size <= this.#items.length >>> 2) {
      this.#resize(this.#items.length >>> 1);
    }
    return item;
  }

  peek(): T | undefined {
    return this.#size === 0 ? undefined : this.#items[this.#head];
  }

  /** The item `index` places from the front, without removing it. */
  at(index: number): T | undefined {
    return index < 0 || index >= this.#size ? undefined : this.#items[(this.#head + index) & (this.#items.length - 1)];
  }

  /** Puts `item` in the place `index` from the front, which must hold one. */
  set(index: number, item: T): void {
    if (index < 0 || index >= this.#size) throw new RangeError(`no item at ${index} of ${this.#size}`);
    this.#items[(this.#head + index) & (this.#items.length - 1)] = item;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = 0; i < this.#size; i++) yield this.#items[(this.#head + i) & (this.#items.length - 1)] as T;
  }

  #resize(capacity: number): void {
    const items = new Array<T | undefined>(capacity);
    for (let i = 0; i < this.#size; i++) items[i] = this.#items[(this.#head + i) & (this.#items.length - 1)];
    this.#items = items;
    this.#head = 0;
  }
}
