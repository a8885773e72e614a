import type { Duplex } from 'node:stream';
import { createHistogram } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

// As an interactive client would: one pair at a time, this far apart.
const PAUSE_MS = 5;
// A round trip that takes longer than this ends the run: the server is not serving.
const ROUND_TRIP_TIMEOUT_MS = 10_000;

/** How the user speaks to a server: a pair is a store and a read of the same mailbox, three reply lines. */
export interface UserDialect {
  readonly name: string;
  /** Sent first (answered with one line), or '' for none. */
  greeting(user: string): string;
  pair(user: string, text: string): string;
  /** The pair's three reply lines, as they should be. */
  answer(user: string, text: string): string[];
}

/** The user's round trips, in milliseconds. */
export interface UserTimes {
  readonly roundTrips: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

/**
 * One user on an open connection: a pair at a time, PAUSE_MS apart, for `ms` (or until
 * `until` says stop); every reply is checked (a wrong one throws). Destroys the socket
 * when done.
 */
export async function interactiveUser(socket: Duplex, dialect: UserDialect, name: string, ms: number, until: () => boolean = () => false): Promise<UserTimes> {
  const histogram = createHistogram();
  let pending = '';
  let waiting: { lines: number; resolve: (lines: string[]) => void } | null = null;
  const got: string[] = [];
  socket.on('data', (chunk: Buffer) => {
    pending += chunk.toString('latin1');
    let lf = pending.indexOf('\n');
    while (lf !== -1) {
      got.push(pending.slice(0, lf).replace(/\r$/, ''));
      pending = pending.slice(lf + 1);
      lf = pending.indexOf('\n');
    }
    if (waiting !== null && got.length >= waiting.lines) {
      const { resolve, lines } = waiting;
      waiting = null;
      resolve(got.splice(0, lines));
    }
  });
  const ask = async (text: string, lines: number): Promise<string[]> => {
    const replies = new Promise<string[]>((resolve) => (waiting = { lines, resolve }));
    socket.write(text);
    const timeout = sleep(ROUND_TRIP_TIMEOUT_MS).then(() => null);
    const answered = await Promise.race([replies, timeout]);
    if (answered === null) throw new Error(`${dialect.name}: no answer within ${ROUND_TRIP_TIMEOUT_MS} ms`);
    return answered;
  };
  try {
    const greeting = dialect.greeting(name);
    if (greeting !== '') await ask(greeting, 1);
    const end = performance.now() + ms;
    for (let i = 0; performance.now() < end && !until(); i++) {
      const text = `hello ${i}`;
      const started = performance.now();
      const replies = await ask(dialect.pair(name, text), 3);
      histogram.record(Math.max(1, Math.round((performance.now() - started) * 1000)));
      const expected = dialect.answer(name, text);
      if (replies.join('\n') !== expected.join('\n')) throw new Error(`${dialect.name}: the user got ${JSON.stringify(replies)}, not ${JSON.stringify(expected)}`);
      await sleep(PAUSE_MS);
    }
  } finally {
    socket.destroy();
  }
  const toMs = (us: number): number => Math.round(us / 100) / 10;
  return { roundTrips: histogram.count, p50: toMs(histogram.percentile(50)), p99: toMs(histogram.percentile(99)), max: toMs(histogram.max) };
}

/** pigeonhole's protocol for the user. */
export function pigeonholeUser(name: string): UserDialect {
  return {
    name,
    greeting: (user) => `LOGIN ${user}\n`,
    pair: (user, text) => `COMPOSE ${user}\n${text}\nREAD\n`,
    answer: (user, text) => ['MESSAGE SENT', user, text],
  };
}
