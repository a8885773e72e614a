// maxConnectionRatePerIp's counts: a sliding second per address, shared by threads.
import test from 'ava';
import { CONNECTION_RATE_CELLS, ConnectionRate } from '../../lib/session/connection-rate.js';

/** A clock the test moves, starting at a whole second (a machine up for a day). */
function manualClock(): { clock: () => number; at: (ms: number) => void } {
  const start = 86_400_000;
  let now = start;
  return { clock: () => now, at: (ms) => (now = start + ms) };
}

function admitted(rate: ConnectionRate, key: string, tries: number): number {
  let count = 0;
  for (let i = 0; i < tries; i++) if (rate.admit(key)) count++;
  return count;
}

test('an address may open the rate in a second, then is refused; other addresses are not held back', (t) => {
  const { clock, at } = manualClock();
  const rate = ConnectionRate.local(3, clock);
  at(100);
  t.is(admitted(rate, '192.0.2.1', 10), 3);
  t.is(admitted(rate, '192.0.2.1', 1), 0);
  t.is(admitted(rate, '198.51.100.9', 3), 3, 'another address has its own rate');
  at(900);
  t.is(admitted(rate, '192.0.2.1', 1), 0, 'still within the same second');
});

test('the last second counts as much of it as the sliding window still covers', (t) => {
  const { clock, at } = manualClock();
  const rate = ConnectionRate.local(4, clock);
  at(0);
  t.is(admitted(rate, '192.0.2.1', 4), 4);
  // A quarter into the next second, the last one's 4 weigh 3: one place.
  at(1_250);
  t.is(admitted(rate, '192.0.2.1', 5), 1);
  // Three quarters in, they weigh 1 and this second holds 1: two more.
  at(1_750);
  t.is(admitted(rate, '192.0.2.1', 5), 2);
  // Two seconds on, nothing of the first second is left, and this one weighs 3 x 0.5.
  at(2_500);
  t.is(admitted(rate, '192.0.2.1', 5), 2);
});

test('refused connections are not counted: hammering does not keep an address out', (t) => {
  const { clock, at } = manualClock();
  const rate = ConnectionRate.local(2, clock);
  at(10);
  t.is(admitted(rate, '192.0.2.1', 1_000), 2);
  at(990);
  t.is(admitted(rate, '192.0.2.1', 1_000), 0);
  // Half into the next second the last one's 2 weigh 1, not the thousands refused.
  at(1_500);
  t.is(admitted(rate, '192.0.2.1', 1_000), 1);
  // A second with no connection at all between: the whole rate again.
  at(3_100);
  t.is(admitted(rate, '192.0.2.1', 10), 2);
});

test('a steady rate under the limit is let in second after second', (t) => {
  const { clock, at } = manualClock();
  const rate = ConnectionRate.local(10, clock);
  // Five a second, one every 200 ms, for eight seconds: the sketches go round nearly three times.
  let letIn = 0;
  for (let ms = 0; ms < 8_000; ms += 200) {
    at(ms);
    if (rate.admit('192.0.2.1')) letIn++;
  }
  t.is(letIn, 40);
  // And the limit still holds after them: the last second's 5, and 5 more.
  at(8_000);
  t.is(admitted(rate, '192.0.2.1', 20), 5);
});

test('threads sharing the cells count one rate between them', (t) => {
  const { clock, at } = manualClock();
  const cells = new Int32Array(new SharedArrayBuffer(CONNECTION_RATE_CELLS * 4));
  ConnectionRate.init(cells);
  const one = new ConnectionRate(cells, 4, clock);
  const two = new ConnectionRate(cells, 4, clock);
  at(200);
  t.is(admitted(one, '192.0.2.1', 2), 2);
  t.is(admitted(two, '192.0.2.1', 5), 2);
  t.is(admitted(one, '192.0.2.1', 1), 0);
  // The thread that first sees the next second starts it for both.
  at(2_600);
  t.is(admitted(two, '192.0.2.1', 1), 1);
  t.is(admitted(one, '192.0.2.1', 5), 3);
});

test('a rate of 0 admits everything', (t) => {
  const rate = ConnectionRate.local(0);
  t.is(admitted(rate, '192.0.2.1', 10_000), 10_000);
});
