import { MessageChannel, Worker } from 'node:worker_threads';
import test from 'ava';
import fc from 'fast-check';
import { ByteRing, RING_ELSEWHERE, RING_EMPTY, RING_HEADER } from '../../lib/shards/ring.js';
import type { StaleProducerData, StaleProducerReport } from '../helpers/ring-stale-producer.js';
import { RingChannel } from '../../lib/shards/ring-channel.js';

const bytes = (n: number, seed: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));

function take(ring: ByteRing): Buffer | typeof RING_EMPTY | typeof RING_ELSEWHERE {
  const message = ring.read();
  if (message === RING_EMPTY || message === RING_ELSEWHERE) return message;
  const copy = Buffer.from(message);
  ring.release();
  return copy;
}

test('messages come out in order and byte for byte, wrapping round the ring many times', (t) => {
  const ring = ByteRing.create(1024);
  for (let i = 0; i < 2000; i++) {
    const message = bytes((i * 37) % 300, i);
    t.true(ring.write(message, 0, message.length), `write ${i}`);
    t.deepEqual(take(ring), message, `message ${i}`);
  }
  t.is(take(ring), RING_EMPTY);
});

test('a full ring refuses a write and takes it once the reader has released room', (t) => {
  // 64 bytes a message with its header: three fill a 256-byte ring (never to the last byte).
  const ring = ByteRing.create(256);
  const message = bytes(60, 1);
  for (let i = 0; i < 3; i++) t.true(ring.write(message, 0, message.length), `write ${i}`);
  t.false(ring.write(message, 0, message.length), 'no room for a fourth');
  t.deepEqual(take(ring), message);
  t.true(ring.write(message, 0, message.length), 'room again');
  for (let i = 0; i < 3; i++) t.deepEqual(take(ring), message);
  t.is(take(ring), RING_EMPTY);
});

test('a message bigger than the ring takes is refused loudly; a mark says it goes elsewhere', (t) => {
  const ring = ByteRing.create(256);
  const big = bytes(ring.maxMessage + 1, 2);
  t.throws(() => ring.write(big, 0, big.length), { instanceOf: RangeError });
  const small = bytes(10, 3);
  t.true(ring.write(small, 0, small.length));
  t.true(ring.markElsewhere());
  t.true(ring.write(small, 0, small.length));
  t.deepEqual(take(ring), small);
  t.is(take(ring), RING_ELSEWHERE);
  t.deepEqual(take(ring), small);
});

test('property: any interleaving of writes and reads keeps order and bytes', (t) => {
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.nat({ max: 200 }), fc.constant(-1)), { maxLength: 400 }), (steps) => {
      const ring = ByteRing.create(512);
      const queue: Buffer[] = [];
      let seed = 0;
      for (const step of steps) {
        if (step >= 0) {
          const message = bytes(step, seed++);
          if (ring.write(message, 0, message.length)) queue.push(message);
        } else {
          const got = take(ring);
          const want = queue.shift() ?? RING_EMPTY;
          if (want === RING_EMPTY ? got !== RING_EMPTY : !(got instanceof Buffer && got.equals(want))) return false;
        }
      }
      return true;
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test('across threads: batches, small and too big for the ring, come back in order, waking a sleeping peer', async (t) => {
  const requests = ByteRing.create(4096);
  const replies = ByteRing.create(4096);
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(new URL('../helpers/ring-echo-entry.cjs', import.meta.url), { workerData: { port: port2, requests: requests.buffer, replies: replies.buffer }, transferList: [port2] });
  t.teardown(() => void worker.terminate());
  const got: Buffer[] = [];
  const sent: Buffer[] = [];
  let done: () => void = () => {};
  const all = new Promise<void>((resolve) => (done = resolve));
  const channel = new RingChannel(requests, replies, port1, (batch) => {
    got.push(Buffer.from(batch));
    if (got.length === sent.length) done();
  });
  port1.on('message', (message: Uint8Array) => channel.fromPort(Buffer.from(message.buffer, message.byteOffset, message.byteLength)));
  void channel.watch();
  for (let round = 0; round < 20; round++) {
    // Some rounds let the peer fall asleep first, so the writes must wake it.
    if (round % 4 === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    for (let i = 0; i < 10; i++) {
      const size = i === 7 ? 5000 : (round * 10 + i) * 13;
      const batch = bytes(size, round * 10 + i);
      sent.push(batch);
      channel.send(Buffer.from(batch));
    }
  }
  const timeout = setTimeout(done, 20_000);
  await all;
  clearTimeout(timeout);
  t.is(got.length, sent.length);
  t.true(got.every((reply, i) => reply.equals(Buffer.from(sent[i] as Buffer).reverse())), 'every reply in order, byte for byte');
  channel.close();
  port1.postMessage({ op: 'close' });
  port1.close();
});

// A producer clears a sleeper's flag and notifies in two steps. One that read the flag of
// an earlier sleep and was held up can clear the flag of the next sleep and notify before
// that sleep's wait exists; if the reader then waited with its flag cleared, no later
// write would wake it. Seen once in a bench run: the server stopped answering for good.
// The other thread here plays that producer, many times over, and writes a message each
// time its notify found no one waiting: the reader must still get every one.
test('a reader whose flag a late producer cleared just before its wait began still wakes for the next write', async (t) => {
  const ring = ByteRing.create(4096);
  const control = new SharedArrayBuffer(4);
  const got = new Int32Array(control);
  const { port1, port2 } = new MessageChannel();
  const workerData: StaleProducerData = { ring: ring.buffer, control, wanted: 20, seconds: 20 };
  const worker = new Worker(new URL('../helpers/ring-stale-producer-entry.cjs', import.meta.url), { workerData });
  t.teardown(() => void worker.terminate());
  // The reader: a channel whose outgoing ring nobody reads (it sends nothing).
  const channel = new RingChannel(ByteRing.create(64), ring, port1, () => {
    Atomics.add(got, 0, 1);
    Atomics.notify(got, 0);
  });
  void channel.watch();
  const report = await new Promise<StaleProducerReport>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  channel.close();
  port1.close();
  port2.close();
  t.log(`${report.caught} of ${report.attempts} tries found the reader between its flag and its wait`);
  t.true(report.caught > 0, 'the race was met at least once (else this run shows nothing)');
  t.is(report.received, report.caught, 'every message written after such a clear was read');
});

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A reader asleep on a ring, and a writer whose write it slept through: its flag cleared
 * without a notify (a wake-up lost, whatever the cause), then a write that sees no sleeper.
 */
async function readerAfterLostWakeUp(t: import('ava').ExecutionContext): Promise<{ reader: RingChannel; writer: RingChannel; got: string[]; header: Int32Array }> {
  const ring = ByteRing.create(4096);
  const { port1, port2 } = new MessageChannel();
  const got: string[] = [];
  const reader = new RingChannel(ByteRing.create(64), ring, port1, (batch) => void got.push(batch.toString()));
  const writer = new RingChannel(ring, ByteRing.create(64), port2, () => {});
  t.teardown(() => {
    reader.close();
    writer.close();
    port1.close();
    port2.close();
  });
  void reader.watch();
  await pause(20);
  const header = new Int32Array(ring.buffer, 0, 3);
  t.is(Atomics.load(header, RING_HEADER.SLEEPING), 1, 'the reader sleeps');
  Atomics.store(header, RING_HEADER.SLEEPING, 0);
  writer.send(Buffer.from('one'));
  await pause(50);
  t.deepEqual(got, [], 'not woken by the write');
  return { reader, writer, got, header };
}

// The producer's nudge (what the router does for a shard silent for stallMs) wakes it.
test('a nudge wakes a reader that slept through a write', async (t) => {
  const { writer, got } = await readerAfterLostWakeUp(t);
  writer.nudge();
  await pause(50);
  t.deepEqual(got, ['one']);
  writer.send(Buffer.from('two'));
  await pause(50);
  t.deepEqual(got, ['one', 'two'], 'and it sleeps properly again after');
});

// The acceptor's side of the same: it nudges its own channel, whose watch slept through
// a reply. Taking the reply is not enough; the watch must sleep properly again, or every
// later reply would wait for the next nudge.
test('a nudge of the sleeping side itself takes what waits and puts its watch back to sleep properly', async (t) => {
  const { reader, writer, got, header } = await readerAfterLostWakeUp(t);
  reader.nudge();
  await pause(50);
  t.deepEqual(got, ['one']);
  t.is(Atomics.load(header, RING_HEADER.SLEEPING), 1, 'asleep again, flag set');
  writer.send(Buffer.from('two'));
  await pause(50);
  t.deepEqual(got, ['one', 'two'], 'the next write wakes it without a nudge');
});
