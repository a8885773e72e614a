import { AddressHash, SKETCH_HEADER_CELLS, SKETCH_ROWS } from '../util/address-hash.js';
import { LIMIT_FIELDS, type LimitCounts, noLimitCounts } from './connection-guard.js';
import type { Admission, ConnectionTally } from './connection-tally.js';
import { CONNECTION_RATE_CELLS, ConnectionRate } from './connection-rate.js';

/**
 * The connection counts of a server with several acceptor threads, in one
 * SharedArrayBuffer every thread maps: maxConnections and maxConnectionsPerIp are the
 * server's limits, whichever thread accepted a connection, and the limit counters
 * (server.limitCounts) sum every thread's without asking it.
 *
 *   Int32 cells   OPEN          connections open, all threads together
 *                 SEEDS         two random seeds for the address hashes
 *                 SKETCH        SKETCH_ROWS x BUCKETS counters of connections per address hash
 *                 per acceptor  its own OPEN and SKETCH, mirrored: when its thread dies,
 *                               the supervisor takes exactly them out of the totals
 *                 RATE          new connections per address (ConnectionRate)
 *   Float64       per acceptor  its LimitCounts, written by that thread alone
 *
 * Addresses are counted in a count-min sketch: each address adds to one counter in each
 * of two rows (two independent hashes), and it is refused when both of its counters are
 * at the limit. An address is never let past the limit; one that shares both counters
 * with busy addresses may be refused early, which with 2 x 2048 counters and random
 * seeds takes several addresses each holding about the limit. Every update is an atomic
 * add, checked after the fact (both rows read again once both are added to) and undone
 * when over: two threads admitting at once can refuse a connection a little early,
 * never let one in over a limit.
 */
const OPEN = 0;
const HEADER = SKETCH_HEADER_CELLS;
const BUCKETS = 2048;
const SKETCH_CELLS = SKETCH_ROWS * BUCKETS;
// An acceptor's mirror: its OPEN, then its SKETCH.
const REGION_CELLS = 1 + SKETCH_CELLS;

// Where the connection rate's cells start (see ConnectionRate), after every region.
function rateStart(acceptors: number): number {
  return HEADER + SKETCH_CELLS + acceptors * REGION_CELLS;
}

function int32Cells(acceptors: number): number {
  const cells = rateStart(acceptors) + CONNECTION_RATE_CELLS;
  // The Float64 part starts 8-aligned.
  return cells + (cells % 2);
}

export class SharedConnections {
  readonly buffer: SharedArrayBuffer;
  readonly acceptors: number;
  readonly #cells: Int32Array;
  readonly #limits: Float64Array;

  /** Fresh counts for a server of `acceptors` threads. */
  static create(acceptors: number): SharedConnections {
    const cells = int32Cells(acceptors);
    const shared = new SharedConnections(new SharedArrayBuffer(cells * 4 + acceptors * LIMIT_FIELDS.length * 8), acceptors);
    AddressHash.seed(shared.#cells);
    ConnectionRate.init(shared.#rateCells());
    return shared;
  }

  /** The same counts seen from another thread. */
  constructor(buffer: SharedArrayBuffer, acceptors: number) {
    this.buffer = buffer;
    this.acceptors = acceptors;
    const cells = int32Cells(acceptors);
    this.#cells = new Int32Array(buffer, 0, cells);
    this.#limits = new Float64Array(buffer, cells * 4, acceptors * LIMIT_FIELDS.length);
  }

  /** Connections open now, all threads together. */
  get open(): number {
    return Atomics.load(this.#cells, OPEN);
  }

  /** Connections open on acceptor `acceptor` now. */
  openOn(acceptor: number): number {
    return Atomics.load(this.#cells, region(acceptor));
  }

  /** Acceptor `acceptor`'s side of the counts, with the server's limits. */
  tally(acceptor: number, maxConnections: number, maxConnectionsPerIp: number): ConnectionTally {
    return new SharedTally(this.#cells, region(acceptor), maxConnections, maxConnectionsPerIp);
  }

  /** maxConnectionRatePerIp counted for the server, whichever thread admits a connection. */
  rate(perSecond: number): ConnectionRate {
    return new ConnectionRate(this.#rateCells(), perSecond);
  }

  #rateCells(): Int32Array {
    return this.#cells.subarray(rateStart(this.acceptors), rateStart(this.acceptors) + CONNECTION_RATE_CELLS);
  }

  /** Acceptor `acceptor`'s limit counters: fields over its row of the shared memory. */
  limitCounts(acceptor: number): LimitCounts {
    const limits = this.#limits;
    const row = acceptor * LIMIT_FIELDS.length;
    const counts = {} as LimitCounts;
    LIMIT_FIELDS.forEach((field, i) => {
      Object.defineProperty(counts, field, {
        enumerable: true,
        get: () => limits[row + i] as number,
        set: (value: number) => {
          limits[row + i] = value;
        },
      });
    });
    return counts;
  }

  /** Every acceptor's limit counters summed: what server.limitCounts reports. */
  limitTotals(): LimitCounts {
    const totals = noLimitCounts();
    for (let acceptor = 0; acceptor < this.acceptors; acceptor++) {
      LIMIT_FIELDS.forEach((field, i) => {
        totals[field] += this.#limits[acceptor * LIMIT_FIELDS.length + i] as number;
      });
    }
    return totals;
  }

  /**
   * Takes the connections of acceptor `acceptor`, whose thread has died (closing all of
   * them), out of the server's counts. Only once the thread is gone: nothing may add to
   * its mirror meanwhile.
   */
  releaseAcceptor(acceptor: number): void {
    const cells = this.#cells;
    const mine = region(acceptor);
    const open = Atomics.exchange(cells, mine, 0);
    if (open !== 0) Atomics.sub(cells, OPEN, open);
    for (let i = 0; i < SKETCH_CELLS; i++) {
      const held = Atomics.exchange(cells, mine + 1 + i, 0);
      if (held !== 0) Atomics.sub(cells, HEADER + i, held);
    }
  }
}

function region(acceptor: number): number {
  return HEADER + SKETCH_CELLS + acceptor * REGION_CELLS;
}

/** One acceptor thread's view: it counts into the totals and into its own mirror. */
class SharedTally implements ConnectionTally {
  readonly #cells: Int32Array;
  readonly #mine: number;
  readonly #maxConnections: number;
  readonly #maxPerIp: number;
  readonly #hash: AddressHash;

  constructor(cells: Int32Array, mine: number, maxConnections: number, maxConnectionsPerIp: number) {
    this.#cells = cells;
    this.#mine = mine;
    this.#maxConnections = maxConnections;
    this.#maxPerIp = maxConnectionsPerIp;
    this.#hash = new AddressHash(cells, BUCKETS);
  }

  get open(): number {
    return Atomics.load(this.#cells, OPEN);
  }

  take(address: string): Admission {
    const cells = this.#cells;
    const mine = this.#mine;
    // The mirror first: a thread ended between the two adds is put right from its
    // mirror, at worst letting one connection too many in, never keeping a place taken.
    Atomics.add(cells, mine, 1);
    if (Atomics.add(cells, OPEN, 1) >= this.#maxConnections) {
      Atomics.sub(cells, OPEN, 1);
      Atomics.sub(cells, mine, 1);
      return 'max-connections';
    }
    if (this.#maxPerIp === 0) return 'admitted';
    const [a, b] = this.#hash.buckets(address);
    Atomics.add(cells, mine + 1 + a, 1);
    Atomics.add(cells, mine + 1 + b, 1);
    Atomics.add(cells, HEADER + a, 1);
    Atomics.add(cells, HEADER + b, 1);
    // Both rows read again after both adds. What each add returned is not enough: two
    // threads taking the last place at once can be ordered one way on one row and the
    // other way on the other, each then seeing a place left in one of them. Read after
    // both adds, the one that added last sees every add of the other in both rows.
    if (Math.min(Atomics.load(cells, HEADER + a), Atomics.load(cells, HEADER + b)) > this.#maxPerIp) {
      this.#drop(a, b);
      return 'max-per-ip';
    }
    return 'admitted';
  }

  release(address: string): void {
    if (this.#maxPerIp === 0) {
      Atomics.sub(this.#cells, OPEN, 1);
      Atomics.sub(this.#cells, this.#mine, 1);
      return;
    }
    const [a, b] = this.#hash.buckets(address);
    this.#drop(a, b);
  }

  #drop(a: number, b: number): void {
    const cells = this.#cells;
    const mine = this.#mine;
    Atomics.sub(cells, HEADER + a, 1);
    Atomics.sub(cells, HEADER + b, 1);
    Atomics.sub(cells, OPEN, 1);
    Atomics.sub(cells, mine + 1 + a, 1);
    Atomics.sub(cells, mine + 1 + b, 1);
    Atomics.sub(cells, mine, 1);
  }
}
