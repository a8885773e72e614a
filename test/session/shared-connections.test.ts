// The connection counts several acceptor threads share: the limits hold for the server
// as a whole, a dead thread's connections can be taken out, and the limit counters sum.
import { Worker } from 'node:worker_threads';
import test from 'ava';
import { LocalTally } from '../../lib/session/connection-tally.js';
import { SharedConnections } from '../../lib/session/shared-connections.js';
import type { PerIpTakerData } from '../helpers/per-ip-taker.js';

test('maxConnections counts the connections of every acceptor together', (t) => {
  const shared = SharedConnections.create(3);
  const [a, b, c] = [0, 1, 2].map((acceptor) => shared.tally(acceptor, 4, 0));
  t.is(a?.take('10.0.0.1'), 'admitted');
  t.is(b?.take('10.0.0.2'), 'admitted');
  t.is(b?.take('10.0.0.3'), 'admitted');
  t.is(c?.take('10.0.0.4'), 'admitted');
  t.is(a?.take('10.0.0.5'), 'max-connections', 'four open across three threads: full');
  t.is(c?.take('10.0.0.5'), 'max-connections');
  t.is(shared.open, 4);
  t.deepEqual([0, 1, 2].map((acceptor) => shared.openOn(acceptor)), [1, 2, 1]);
  b?.release('10.0.0.2');
  t.is(a?.take('10.0.0.5'), 'admitted', 'a close on one thread makes room on another');
  t.deepEqual([0, 1, 2].map((acceptor) => shared.openOn(acceptor)), [2, 1, 1]);
});

test('maxConnectionsPerIp counts one address over every acceptor, and never lets it past the limit', (t) => {
  const shared = SharedConnections.create(2);
  const a = shared.tally(0, 1_000, 3);
  const b = shared.tally(1, 1_000, 3);
  t.is(a.take('192.0.2.7'), 'admitted');
  t.is(b.take('192.0.2.7'), 'admitted');
  t.is(b.take('192.0.2.7'), 'admitted');
  t.is(a.take('192.0.2.7'), 'max-per-ip');
  t.is(b.take('192.0.2.7'), 'max-per-ip');
  t.is(shared.open, 3, 'a refusal leaves nothing counted');
  a.release('192.0.2.7');
  t.is(b.take('192.0.2.7'), 'admitted', 'a close on one thread makes room on the other');
  t.is(a.take('192.0.2.7'), 'max-per-ip');
  // Other addresses are not held back by the full one. (Checked last: once 200 more
  // addresses are counted, some may share a counter with it, and with random seeds one
  // run in a hundred or so would share both, so a release could no longer make room.)
  let admitted = 0;
  for (let i = 0; i < 200; i++) if (a.take(`198.51.100.${i}`) === 'admitted') admitted++;
  t.is(admitted, 200);
});

test('the shared tally refuses what the one-thread tally refuses, for a random sequence of opens and closes', (t) => {
  const shared = SharedConnections.create(2);
  const tallies = [shared.tally(0, 20, 4), shared.tally(1, 20, 4)];
  const local = new LocalTally(20, 4);
  const open: [thread: number, address: string][] = [];
  let seed = 7;
  const random = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  for (let step = 0; step < 2_000; step++) {
    if (open.length > 0 && random(3) === 0) {
      const [thread, address] = open.splice(random(open.length), 1)[0] as [number, string];
      tallies[thread]?.release(address);
      local.release(address);
      continue;
    }
    const thread = random(2);
    const address = `203.0.113.${random(8)}`;
    const expected = local.take(address);
    // Eight addresses: a counter pair shared with another address could refuse early,
    // which the one-thread tally never does; with 2 x 2048 counters it does not happen here.
    t.is(tallies[thread]?.take(address), expected, `step ${step}`);
    if (expected === 'admitted') open.push([thread, address]);
  }
  t.is(shared.open, local.open);
});

test("a dead acceptor's connections are taken out of the server's counts, and only they", (t) => {
  const shared = SharedConnections.create(2);
  const a = shared.tally(0, 5, 2);
  const b = shared.tally(1, 5, 2);
  t.is(a.take('192.0.2.1'), 'admitted');
  t.is(b.take('192.0.2.1'), 'admitted');
  t.is(b.take('192.0.2.2'), 'admitted');
  t.is(a.take('192.0.2.1'), 'max-per-ip');
  shared.releaseAcceptor(1);
  t.is(shared.open, 1);
  t.is(shared.openOn(1), 0);
  t.is(a.take('192.0.2.1'), 'admitted', "the dead thread's connection from 192.0.2.1 no longer counts");
  t.is(a.take('192.0.2.1'), 'max-per-ip', "the live thread's own still do");
});

test('limit counters: each acceptor writes its own row, and the totals sum them', (t) => {
  const shared = SharedConnections.create(2);
  const first = shared.limitCounts(0);
  const second = shared.limitCounts(1);
  first.refusedConnections++;
  first.lineTimeouts += 2;
  second.refusedConnections++;
  second.acceptErrors++;
  second.replyBufferDrops += 3;
  t.deepEqual({ ...second }, { refusedConnections: 1, refusedPerIp: 0, refusedRatePerIp: 0, lineTimeouts: 0, lineBufferDrops: 0, replyBufferDrops: 3, acceptErrors: 1 });
  t.deepEqual(shared.limitTotals(), { refusedConnections: 2, refusedPerIp: 0, refusedRatePerIp: 0, lineTimeouts: 2, lineBufferDrops: 0, replyBufferDrops: 3, acceptErrors: 1 });
});

// Two threads taking an address's last place at the same moment could be ordered one way
// on one row of counters and the other way on the other, and both be let in. Four threads
// here take and release one address at maxConnectionsPerIp 1 as fast as they can (1.2
// million tries in all); before the rows were read again after both adds, two held it at
// once tens to hundreds of times a run.
test('threads taking the same address at once never hold more than maxConnectionsPerIp', async (t) => {
  const acceptors = 4;
  const shared = SharedConnections.create(acceptors);
  const control = new SharedArrayBuffer(12);
  const words = new Int32Array(control);
  const workers = Array.from({ length: acceptors }, (_, acceptor) => {
    const workerData: PerIpTakerData = { buffer: shared.buffer, acceptors, acceptor, control, iterations: 300_000 };
    return new Worker(new URL('../helpers/per-ip-taker-entry.cjs', import.meta.url), { workerData });
  });
  t.teardown(() => Promise.all(workers.map((worker) => worker.terminate())).then(() => {}));
  const admitted = Promise.all(workers.map((worker) => new Promise<number>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  })));
  await Promise.all(workers.map((worker) => new Promise((resolve) => worker.once('online', resolve))));
  Atomics.store(words, 2, 1);
  Atomics.notify(words, 2);
  const counts = await admitted;
  t.true(counts.reduce((sum, count) => sum + count, 0) > 1_000, `places were taken (${counts.join(', ')})`);
  t.is(Atomics.load(words, 1), 0, 'never two at once');
  t.is(shared.open, 0, 'every place given back');
});
