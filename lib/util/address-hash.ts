import { randomInt } from 'node:crypto';

// The header of a two-row count-min sketch of addresses in Int32 cells: cell 0 is its
// owner's, cells 1 and 2 hold the seeds of its address hashes, its counters start at 4.
export const SKETCH_HEADER_CELLS = 4;
export const SKETCH_ROWS = 2;
const SEED_A = 1;
const SEED_B = 2;

/**
 * An address's counter in each of the two rows of a count-min sketch of `buckets`
 * counters a row: FNV-1a under the first seed, then that hash mixed under the second, so
 * two addresses that share one counter rarely share the other. The seeds are random per
 * sketch and kept in its header, so every thread that shares the sketch hashes alike.
 */
export class AddressHash {
  readonly #seedA: number;
  readonly #seedB: number;
  readonly #buckets: number;

  /** Writes fresh seeds into a new sketch's header. */
  static seed(cells: Int32Array): void {
    Atomics.store(cells, SEED_A, randomInt(2 ** 31));
    Atomics.store(cells, SEED_B, randomInt(2 ** 31));
  }

  /** The hash of the sketch whose header is at the start of `cells` (seeded), `buckets` counters a row. */
  constructor(cells: Int32Array, buckets: number) {
    this.#seedA = Atomics.load(cells, SEED_A);
    this.#seedB = Atomics.load(cells, SEED_B);
    this.#buckets = buckets;
  }

  /** `key`'s counter in the first row and in the second (offsets from the first row's start). */
  buckets(key: string): [number, number] {
    const buckets = this.#buckets;
    let hash = 0x811c9dc5 ^ this.#seedA;
    for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
    return [(hash >>> 0) % buckets, buckets + (mix(hash ^ this.#seedB) % buckets)];
  }
}

/** MurmurHash3's finalizer: every bit of the input moves every bit of the output. */
function mix(value: number): number {
  let h = value;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
