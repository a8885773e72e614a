import test from 'ava';
import { BACKLOGGED_BYTES, Backlog, MIN_FAIR_SHARE_BYTES } from '../../lib/session/backlog.js';
import { ReplyQueue } from '../../lib/session/reply-queue.js';
import { OP_COMPOSE, OP_READ } from '../../lib/shards/messages.js';

/** A queue writing into `writes`; `idle` says whether its socket has nothing queued. */
function recorder(idle = false): { queue: ReplyQueue; writes: Buffer[]; ended: () => boolean } {
  const writes: Buffer[] = [];
  let ended = false;
  const queue = new ReplyQueue({ write: (bytes) => writes.push(bytes), idle: () => idle, end: () => (ended = true) });
  return { queue, writes, ended: () => ended };
}

/** Bytes in an ArrayBuffer of their own (small Buffer.from()s share Node's pool). */
function own(text: string): Buffer {
  const bytes = Buffer.allocUnsafeSlow(Buffer.byteLength(text));
  bytes.write(text, 'latin1');
  return bytes;
}

/** What a thread's backlog holds: bytes, and connections holding some. */
const held = (backlog: Backlog): { bytes: number; connections: number } => ({ bytes: backlog.bytes, connections: backlog.connections });

const settle = (): Promise<void> => new Promise((resolve) => queueMicrotask(resolve));

test('replies settled out of order are written in command order, as one buffer per flush', async (t) => {
  const { queue, writes } = recorder();
  const batch = Buffer.from('AAA\nBBB\nCCC\n');
  const a = queue.reserve(OP_COMPOSE, 1);
  const b = queue.reserve(OP_COMPOSE, 1);
  const c = queue.reserve(OP_COMPOSE, 1);
  c.fill(batch, 8, 12);
  b.fill(batch, 4, 8);
  await settle();
  t.deepEqual(writes, [], 'nothing before the first reply is ready');
  a.fill(batch, 0, 4);
  await settle();
  t.deepEqual(writes.map(String), ['AAA\nBBB\nCCC\n']);
  t.is(queue.size, 0);
});

test('a small reply of a big batch is written as a copy, so the socket cannot pin the batch', async (t) => {
  const { queue, writes } = recorder();
  const batch = Buffer.alloc(1 << 20, 0x61);
  batch.write('tiny\n', 1000);
  queue.reserve(OP_COMPOSE, 1).fill(batch, 1000, 1005);
  await settle();
  t.is(String(writes[0]), 'tiny\n');
  t.not(writes[0]?.buffer, batch.buffer);
  t.true((writes[0]?.buffer.byteLength ?? Infinity) < batch.length / 4);
  // A reply that is most of its batch goes out as it is: copying it would save nothing.
  queue.reserve(OP_READ, 1).fill(batch, 0, batch.length - 10);
  await settle();
  t.is(writes[1]?.buffer, batch.buffer);
});

test('replies side by side in one batch go out as one view of it; others as one copy', async (t) => {
  const { queue, writes } = recorder(true);
  const batch = own('MESSAGE SENT\nREAD ERROR\n0\n');
  queue.reserve(OP_COMPOSE, 1).fill(batch, 0, 13);
  queue.reserve(OP_READ, 1).fill(batch, 13, 24);
  queue.reserve(OP_READ, 1).fill(batch, 24, 26);
  await settle();
  t.deepEqual(writes.map(String), ['MESSAGE SENT\nREAD ERROR\n0\n']);
  t.is(writes[0]?.buffer, batch.buffer, 'no copy');

  // Two batches, or a gap: the replies are copied into one buffer of their own.
  const other = own('MESSAGE FAILED\n');
  queue.reserve(OP_COMPOSE, 1).fill(batch, 0, 13);
  queue.reserve(OP_COMPOSE, 1).fill(other, 0, 15);
  await settle();
  t.is(String(writes[1]), 'MESSAGE SENT\nMESSAGE FAILED\n');
  t.not(writes[1]?.buffer, batch.buffer);
  t.not(writes[1]?.buffer, other.buffer);
});

test('an idle socket writes a view of a batch of moderate size; a big batch still only when it is mostly the reply', async (t) => {
  const moderate = Buffer.alloc(64 * 1024, 0x61);
  const idle = recorder(true);
  idle.queue.reserve(OP_COMPOSE, 1).fill(moderate, 100, 113);
  await settle();
  t.is(idle.writes[0]?.buffer, moderate.buffer, 'goes straight to the kernel: nothing is pinned');
  const big = Buffer.alloc(1 << 20, 0x61);
  idle.queue.reserve(OP_COMPOSE, 1).fill(big, 100, 113);
  await settle();
  t.not(idle.writes[1]?.buffer, big.buffer, 'a write that does not go out whole would pin a big batch');
  const busy = recorder(false);
  busy.queue.reserve(OP_COMPOSE, 1).fill(moderate, 100, 113);
  await settle();
  t.not(busy.writes[0]?.buffer, moderate.buffer, 'a socket with writes queued would hold the view');
});

test('bytesInFlight counts the cost of every command until its reply is written', async (t) => {
  const { queue } = recorder();
  const read = queue.reserve(OP_READ, 70_000);
  const compose = queue.reserve(OP_COMPOSE, 100);
  t.is(queue.bytesInFlight, 70_100);
  compose.fill(Buffer.from('MESSAGE SENT\n'), 0, 13);
  await settle();
  t.is(queue.bytesInFlight, 70_100, 'a reply waiting behind another still counts');
  read.fill(Buffer.from('READ ERROR\n'), 0, 11);
  await settle();
  t.is(queue.bytesInFlight, 0);
});

test('COMPOSE bytes count in the thread\'s backlog until written, and all of a gone connection\'s at once, once', async (t) => {
  const backlog = new Backlog();
  const one = new ReplyQueue({ write: () => {}, idle: () => true, end: () => {} }, backlog);
  const two = new ReplyQueue({ write: () => {}, idle: () => true, end: () => {} }, backlog);
  const first = one.reserve(OP_COMPOSE, 100);
  one.reserve(OP_READ, 70_000);
  one.reserve(OP_COMPOSE, 50);
  two.reserve(OP_READ, 70_000);
  t.is(one.backlogBytes, 150, 'a READ counts what its connection\'s READs brought back lately: nothing yet');
  t.deepEqual(held(backlog), { bytes: 150, connections: 1 }, 'a connection with only such READs in flight holds no share');
  two.reserve(OP_COMPOSE, 7);
  t.deepEqual(held(backlog), { bytes: 157, connections: 2 });
  first.fill(Buffer.from('MESSAGE SENT\n'), 0, 13);
  await settle();
  t.is(one.backlogBytes, 50);
  t.deepEqual(held(backlog), { bytes: 57, connections: 2 });
  one.cancel();
  one.cancel();
  t.deepEqual(held(backlog), { bytes: 7, connections: 1 }, 'the rest of a gone connection leaves the backlog, once');
  one.reserve(OP_COMPOSE, 1_000);
  t.deepEqual(held(backlog), { bytes: 7, connections: 1 }, 'nor does anything it is still handed count');
});

test('a READ counts in the backlog what its connection\'s READ replies have been lately', async (t) => {
  const backlog = new Backlog();
  const queue = new ReplyQueue({ write: () => {}, idle: () => true, end: () => {} }, backlog);
  const big = Buffer.alloc(40_000, 0x62);
  const read = async (reply: Buffer): Promise<void> => {
    queue.reserve(OP_READ, 70_000).fill(reply, 0, reply.length);
    await settle();
  };
  await read(big);
  t.is(queue.readEstimate, 10_000, 'a quarter of the way to the reply written');
  const pending = queue.reserve(OP_READ, 70_000);
  t.is(queue.backlogBytes, 10_000);
  t.deepEqual(held(backlog), { bytes: 10_000, connections: 1 });
  pending.fill(big, 0, big.length);
  await settle();
  t.deepEqual(held(backlog), { bytes: 0, connections: 0 }, 'what it counted leaves with its reply');
  for (let i = 0; i < 20; i++) await read(big);
  t.true(queue.readEstimate > 39_000, `a run of big replies shows: ${queue.readEstimate}`);
  const deep = Array.from({ length: 30 }, () => queue.reserve(OP_READ, 70_000));
  t.true(queue.backlogBytes > BACKLOGGED_BYTES, `thirty such READs in flight count what they will likely bring: ${queue.backlogBytes}`);
  t.true(queue.heldBack, 'alone past the mark: held back, as a connection sending as much would be');
  for (const slot of deep) slot.fill(big, 0, big.length);
  await settle();
  t.deepEqual(held(backlog), { bytes: 0, connections: 0 }, 'each READ takes out what it put in, though the estimate moved meanwhile');

  // A new connection of the thread starts from what the thread's READs have brought lately.
  t.true(backlog.readEstimate > 10_000, `the thread's estimate: ${backlog.readEstimate}`);
  t.is(new ReplyQueue({ write: () => {}, idle: () => true, end: () => {} }, backlog).readEstimate, backlog.readEstimate);

  // A client reading small messages holds no share, even a thousand READs deep.
  const small = Buffer.from('alice\nhello there\n');
  for (let i = 0; i < 40; i++) await read(small);
  t.true(queue.readEstimate < 100, `${queue.readEstimate}`);
  backlog.bytes += 100 * BACKLOGGED_BYTES; // the thread is backed up by others
  for (let i = 0; i < 1_000; i++) queue.reserve(OP_READ, 70_000);
  t.false(queue.heldBack, `1,000 READs in flight count ${queue.backlogBytes} bytes`);
});

test('a queue that ends on an aborted slot leaves the backlog at once, not when its socket closes', async (t) => {
  const backlog = new Backlog();
  const queue = new ReplyQueue({ write: () => {}, idle: () => true, end: () => {} }, backlog);
  const first = queue.reserve(OP_COMPOSE, 100);
  queue.reserve(OP_COMPOSE, 50);
  t.deepEqual(held(backlog), { bytes: 150, connections: 1 });
  first.abort();
  await settle();
  t.deepEqual(held(backlog), { bytes: 0, connections: 0 });
  queue.cancel();
  t.deepEqual(held(backlog), { bytes: 0, connections: 0 }, 'and only once');
});

test('holdsBack: only while the thread is backed up, and only a connection holding its share of the mark', (t) => {
  const backlog = new Backlog();
  backlog.connections = 1;
  backlog.bytes = BACKLOGGED_BYTES - 1;
  t.false(backlog.holdsBack(BACKLOGGED_BYTES - 1), 'not backed up: a connection may hold up to its own budget');
  backlog.bytes = BACKLOGGED_BYTES;
  t.true(backlog.holdsBack(BACKLOGGED_BYTES), 'alone, its share is the whole mark');
  t.false(backlog.holdsBack(BACKLOGGED_BYTES - 1));
  backlog.connections = 4;
  t.true(backlog.holdsBack(BACKLOGGED_BYTES / 4), 'four: a quarter each');
  t.false(backlog.holdsBack(BACKLOGGED_BYTES / 4 - 1));
  backlog.connections = 1_000;
  t.true(backlog.holdsBack(MIN_FAIR_SHARE_BYTES), 'many: each still gets the least share');
  t.false(backlog.holdsBack(MIN_FAIR_SHARE_BYTES - 1));
  t.false(backlog.holdsBack(0), 'a connection with nothing in flight is always read');
});

test('end() closes after the replies reserved before it; an aborted slot closes right there', async (t) => {
  const ended = recorder();
  const first = ended.queue.reserve(OP_COMPOSE, 1);
  ended.queue.end();
  t.true(ended.queue.ending);
  await settle();
  t.false(ended.ended(), 'a reply is still owed');
  first.fill(Buffer.from('MESSAGE SENT\n'), 0, 13);
  await settle();
  t.deepEqual(ended.writes.map(String), ['MESSAGE SENT\n']);
  t.true(ended.ended());

  const aborted = recorder();
  const before = aborted.queue.reserve(OP_COMPOSE, 1);
  const lost = aborted.queue.reserve(OP_READ, 1);
  const after = aborted.queue.reserve(OP_COMPOSE, 1);
  after.fill(Buffer.from('MESSAGE SENT\n'), 0, 13);
  lost.abort();
  t.true(aborted.queue.ending, 'no more commands are taken once a slot is lost');
  before.fill(Buffer.from('MESSAGE FAILED\n'), 0, 15);
  await settle();
  t.deepEqual(aborted.writes.map(String), ['MESSAGE FAILED\n'], 'nothing at or after the lost slot is sent');
  t.true(aborted.ended());
});

test('an abort cancels the commands after it still waiting; a later abort of an earlier one cancels those between', async (t) => {
  const { queue } = recorder();
  const slots = Array.from({ length: 10 }, () => queue.reserve(OP_READ, 1));
  slots[9]?.fill(Buffer.from('0\n'), 0, 2);
  slots[6]?.abort();
  t.deepEqual(
    slots.map((slot) => slot.cancelled),
    [false, false, false, false, false, false, false, true, true, false],
    'after the abort, and waiting (the last one was answered already)',
  );
  slots[2]?.abort();
  t.deepEqual(
    slots.map((slot) => slot.cancelled),
    [false, false, false, true, true, true, false, true, true, false],
  );
  slots[8]?.abort(); // already cancelled: nothing changes
  slots[0]?.fill(Buffer.from('0\n'), 0, 2);
  await settle();
  queue.cancel(); // the connection closed: every waiting command
  t.deepEqual(
    slots.map((slot) => slot.cancelled),
    [false, true, false, true, true, true, false, true, true, false],
  );
});
