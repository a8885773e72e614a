import type { Server as NetServer } from 'node:net';
import type { SharedConnections } from '../session/shared-connections.js';

// A thread may hold this much more than an even share before it steps back (and one
// connection more, so that a handful of connections does not make it wait).
const SLACK = 0.1;
// Each step back yields the accept race this long, at most this many times per accept.
const STEP_MS = 1;
const MAX_STEPS = 10;

/**
 * Keeps acceptor threads that accept from one listening socket near an even share of
 * the connections. Every thread polls the socket; whichever calls accept() first after
 * a connection arrives wins it, and a plain race is lopsided (measured: 400 connections
 * over 4 threads split 160/152/77/11; libuv's UV_TCP_SINGLE_ACCEPT alone still gave
 * 37/163 of 200 over 2). So a thread that has just accepted and now holds more than its
 * share stops for a millisecond, up to a few times, before it goes back to accepting:
 * the other threads, woken by the same connections, take the ones waiting meanwhile.
 * Only bursts of connections make anyone wait; connections already open are served
 * again as soon as the thread stops waiting.
 */
export class AcceptBalance {
  readonly #connections: SharedConnections;
  readonly #acceptor: number;
  readonly #sleep = new Int32Array(new SharedArrayBuffer(4));

  constructor(connections: SharedConnections, acceptor: number) {
    this.#connections = connections;
    this.#acceptor = acceptor;
  }

  /** Whether this thread holds more than its share (with slack) of the connections open now. */
  get over(): boolean {
    const connections = this.#connections;
    const share = connections.open / connections.acceptors;
    return connections.openOn(this.#acceptor) > share * (1 + SLACK) + 1;
  }

  /** Called after each accept: steps back while this thread holds more than its share. */
  accepted(): void {
    for (let step = 0; step < MAX_STEPS && this.over; step++) Atomics.wait(this.#sleep, 0, 0, STEP_MS);
  }

  /** Keeps acceptor `acceptor`'s share of `server`'s connections even with the others'. */
  static keep(server: NetServer, connections: SharedConnections, acceptor: number): void {
    const balance = new AcceptBalance(connections, acceptor);
    server.on('connection', () => balance.accepted());
  }
}
