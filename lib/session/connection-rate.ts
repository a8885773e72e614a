import { AddressHash, SKETCH_HEADER_CELLS, SKETCH_ROWS } from '../util/address-hash.js';

/**
 * How many connections each address opened in the last second, for
 * maxConnectionRatePerIp: new connections from one address (for IPv6, its /64) past the
 * rate are refused before anything else is done for them (a TLS handshake above all,
 * which costs the server a millisecond of CPU), so one peer opening and closing
 * connections as fast as it can gets a bounded share of the server.
 *
 *   Int32 cells   WINDOW      the current one-second window's number
 *                 SEEDS       two random seeds for the address hashes
 *                 3 sketches  SKETCH_ROWS x BUCKETS counters each, the window w's in sketch w mod 3
 *
 * The rate is a sliding window: the current window's count plus the last window's,
 * weighted by how much of the last second it still covers. Counts are kept per address
 * hash in count-min sketches (as SharedConnections counts open connections), so memory is
 * fixed whatever the number of addresses and nothing has to be swept: the thread that
 * first sees a new window clears the sketch the next window will use. The cells may be
 * shared by every acceptor thread, which then count against one rate; every update is an
 * atomic add, checked after the fact and undone when over, so threads admitting at once
 * never let an address past the rate. (What can go the other way: a count made by a
 * thread still in the old window while another starts the new one may be cleared with
 * it, once per window at most.)
 */
const WINDOW = 0;
const HEADER = SKETCH_HEADER_CELLS;
const BUCKETS = 1024;
const SKETCH_CELLS = SKETCH_ROWS * BUCKETS;
const WINDOW_MS = 1000;

/** Int32 cells the rate takes: a local rate's own, or a region of SharedConnections. */
export const CONNECTION_RATE_CELLS = HEADER + 3 * SKETCH_CELLS;

/** Milliseconds on a clock every thread of the process shares and that never goes back. */
export type Clock = () => number;

// The system's monotonic clock (time since boot): the same in every thread, whenever
// the thread started, and small enough that a second's number fits an Int32 for 68 years.
const processClock: Clock = () => Number(process.hrtime.bigint() / 1_000_000n);

export class ConnectionRate {
  readonly #cells: Int32Array;
  readonly #perSecond: number;
  readonly #clock: Clock;
  readonly #hash: AddressHash;

  /** Fresh counts in `cells` (CONNECTION_RATE_CELLS long, all 0), seeded. */
  static init(cells: Int32Array): void {
    AddressHash.seed(cells);
  }

  /** A rate of its own, for a server with one acceptor thread. */
  static local(perSecond: number, clock: Clock = processClock): ConnectionRate {
    const cells = new Int32Array(CONNECTION_RATE_CELLS);
    ConnectionRate.init(cells);
    return new ConnectionRate(cells, perSecond, clock);
  }

  /** `perSecond` 0 admits everything. The cells must have been init()ed. */
  constructor(cells: Int32Array, perSecond: number, clock: Clock = processClock) {
    this.#cells = cells;
    this.#perSecond = perSecond;
    this.#clock = clock;
    this.#hash = new AddressHash(cells, BUCKETS);
  }

  /** Counts a new connection from `key` in, or nothing and false when its address is at the rate. */
  admit(key: string): boolean {
    const perSecond = this.#perSecond;
    if (perSecond === 0) return true;
    const cells = this.#cells;
    const now = this.#clock();
    const window = this.#windowAt(now);
    const current = HEADER + (window % 3) * SKETCH_CELLS;
    const last = HEADER + ((window + 2) % 3) * SKETCH_CELLS;
    const [a, b] = this.#hash.buckets(key);
    Atomics.add(cells, current + a, 1);
    Atomics.add(cells, current + b, 1);
    // Both rows read after both adds (see SharedConnections.take): of two threads taking
    // the last place at once, the later sees the other's adds in both rows.
    const opened = Math.min(Atomics.load(cells, current + a), Atomics.load(cells, current + b));
    const before = Math.min(Atomics.load(cells, last + a), Atomics.load(cells, last + b));
    // Clamped: a thread whose clock is a moment behind the window another one started.
    const stillCovered = Math.min(1, Math.max(0, 1 - (now - window * WINDOW_MS) / WINDOW_MS));
    if (opened + before * stillCovered <= perSecond) return true;
    Atomics.sub(cells, current + a, 1);
    Atomics.sub(cells, current + b, 1);
    return false;
  }

  /** The window `now` falls in, after starting it if this thread is the first to get there. */
  #windowAt(now: number): number {
    const cells = this.#cells;
    const window = Math.floor(now / WINDOW_MS);
    const seen = Atomics.load(cells, WINDOW);
    // Another thread may have started the next window a moment earlier by its clock.
    if (window <= seen) return seen;
    if (Atomics.compareExchange(cells, WINDOW, seen, window) !== seen) return Math.max(window, Atomics.load(cells, WINDOW));
    if (window - seen === 1) {
      // The next window's sketch last held the window before last: emptied for its turn.
      this.#clear((window + 1) % 3);
    } else {
      // A second or more went by without a connection: no count held is still current.
      for (let sketch = 0; sketch < 3; sketch++) this.#clear(sketch);
    }
    return window;
  }

  #clear(sketch: number): void {
    const start = HEADER + sketch * SKETCH_CELLS;
    for (let i = start; i < start + SKETCH_CELLS; i++) Atomics.store(this.#cells, i, 0);
  }
}
