import type { Server as NetServer, Socket } from 'node:net';
import type { SharedConnections } from '../session/shared-connections.js';

// A thread may hold this much more than an even share before it steps back (and one
// connection more, so that a handful of connections does not make it wait).
const SLACK = 0.1;
// Each step back yields the accept race this long, at most this many times per accept.
const STEP_MS = 1;
const MAX_STEPS = 10;
// At most this much of each second is spent stepping back: under a storm of connections
// opened and closed at once, a thread that stays over its share (it cannot see closes
// while it waits) must still serve the connections it has.
const MAX_STEPPING_MS_PER_SECOND = 100;

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
  // The current second, and the steps back taken in it.
  #secondStartedAt = -Infinity;
  #steppedMs = 0;

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

  /** Called after each accept: steps back while this thread holds more than its share; returns the steps taken. */
  accepted(): number {
    const now = performance.now();
    if (now - this.#secondStartedAt >= 1_000) {
      this.#secondStartedAt = now;
      this.#steppedMs = 0;
    }
    let step = 0;
    for (; step < MAX_STEPS && this.#steppedMs < MAX_STEPPING_MS_PER_SECOND && this.over; step++) {
      Atomics.wait(this.#sleep, 0, 0, STEP_MS);
      this.#steppedMs += STEP_MS;
    }
    return step;
  }

  /** Milliseconds stepped back in the current second. */
  get steppedMs(): number {
    return this.#steppedMs;
  }

  /** Keeps acceptor `acceptor`'s share of `server`'s connections even with the others'. */
  static keep(server: NetServer, connections: SharedConnections, acceptor: number): AcceptBalance {
    const balance = new AcceptBalance(connections, acceptor);
    // After the server's own listener: a connection it refused (a limit) counts for no one.
    server.on('connection', (socket: Socket) => {
      if (!socket.destroyed) balance.accepted();
    });
    return balance;
  }
}
