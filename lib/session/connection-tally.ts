/** Why a connection was not counted in. */
export type Admission = 'admitted' | 'max-connections' | 'max-per-ip';

/**
 * Where the open connections of a server are counted against maxConnections and
 * maxConnectionsPerIp. With one acceptor thread, in that thread (LocalTally); with
 * several, in memory they all share (SharedConnections), so both limits stay the
 * server's, whichever thread a connection lands on.
 */
export interface ConnectionTally {
  /** Counts a connection from `address` in, or nothing at all when a limit is reached. */
  take(address: string): Admission;
  /** A connection counted in by take(address) closed. */
  release(address: string): void;
  /** Connections counted in now, server-wide. */
  readonly open: number;
}

/** The tally of a server with one acceptor thread: exact counts per address, in a Map. */
export class LocalTally implements ConnectionTally {
  readonly #maxConnections: number;
  readonly #maxPerIp: number;
  readonly #perAddress = new Map<string, number>();
  #open = 0;

  constructor(maxConnections: number, maxConnectionsPerIp: number) {
    this.#maxConnections = maxConnections;
    this.#maxPerIp = maxConnectionsPerIp;
  }

  get open(): number {
    return this.#open;
  }

  take(address: string): Admission {
    if (this.#open >= this.#maxConnections) return 'max-connections';
    const fromAddress = this.#perAddress.get(address) ?? 0;
    if (this.#maxPerIp > 0 && fromAddress >= this.#maxPerIp) return 'max-per-ip';
    this.#open++;
    this.#perAddress.set(address, fromAddress + 1);
    return 'admitted';
  }

  release(address: string): void {
    this.#open--;
    const left = (this.#perAddress.get(address) ?? 1) - 1;
    if (left === 0) this.#perAddress.delete(address);
    else this.#perAddress.set(address, left);
  }
}
