import test from 'ava';
import { MessageChannel } from 'node:worker_threads';
import { BatchChannel } from '../../lib/shards/batch-channel.js';
import { ByteRing } from '../../lib/shards/ring.js';
import type { RingBuffers } from '../../lib/shards/ring-channel.js';
import { tick, until } from '../helpers/line-client.js';

// Rings far smaller than the server's, so a few batches fill one.
const smallRings = (): RingBuffers => ({ requests: ByteRing.create(512).buffer, replies: ByteRing.create(512).buffer });

const batch = (i: number): Buffer => Buffer.alloc(100, i);

/** Both ends of one channel; each end's received batches, copied. */
function pair(rings: RingBuffers | null): { acceptor: BatchChannel; shard: BatchChannel; atAcceptor: number[]; atShard: number[] } {
  const { port1, port2 } = new MessageChannel();
  const atAcceptor: number[] = [];
  const atShard: number[] = [];
  const acceptor = new BatchChannel(port1, rings, 'acceptor', (b) => void atAcceptor.push(b[0] as number));
  const shard = new BatchChannel(port2, rings, 'shard', (b) => void atShard.push(b[0] as number));
  port1.on('message', (m: Uint8Array) => acceptor.fromPort(m));
  port2.on('message', (m: Uint8Array) => shard.fromPort(m));
  return { acceptor, shard, atAcceptor, atShard };
}

test('batches that wait for room in a full ring settle flushed() only once the reader took them, in order', async (t) => {
  const { acceptor, shard, atShard } = pair(smallRings());
  t.teardown(() => acceptor.close());
  // The shard end is not reading yet: the ring fills and the rest waits in the backlog.
  for (let i = 1; i <= 10; i++) acceptor.send(batch(i));
  let flushed = false;
  const settled = acceptor.flushed().then(() => (flushed = true));
  await tick(20);
  t.false(flushed, 'not flushed while batches wait for room');
  shard.start();
  await settled;
  await until(() => atShard.length >= 10, 'ten batches at the shard');
  t.deepEqual(atShard, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
});

test('replies left in the ring by an end that closed (or died) are still taken when its port closes', async (t) => {
  const { acceptor, shard, atAcceptor } = pair(smallRings());
  // The acceptor end is not watching its ring: only the port's close can make it look.
  shard.send(batch(7));
  shard.send(batch(8));
  shard.close();
  await until(() => atAcceptor.length >= 2, 'two replies at the acceptor');
  t.deepEqual(atAcceptor, [7, 8]);
  // Closed both ways now: nothing more is sent or taken.
  acceptor.send(batch(9));
  t.is(acceptor.drain(), 0);
});

test('on the port transport, batches go as messages both ways, and nothing is sent after close', async (t) => {
  const { acceptor, shard, atShard, atAcceptor } = pair(null);
  acceptor.send(batch(1));
  acceptor.send(batch(2));
  await until(() => atShard.length >= 2, 'two batches at the shard');
  shard.send(batch(3));
  await until(() => atAcceptor.length >= 1, 'a reply at the acceptor');
  t.deepEqual([atShard, atAcceptor], [[1, 2], [3]]);
  acceptor.close();
  acceptor.send(batch(4));
  await tick(20);
  t.deepEqual(atShard, [1, 2]);
});

test("a shard drops the batches an acceptor left in its ring when the acceptor's port closes (it died; its connections are gone)", async (t) => {
  const { acceptor, shard, atShard } = pair(smallRings());
  // The shard end is not watching: the acceptor writes a batch and is gone.
  acceptor.send(batch(5));
  acceptor.close();
  await tick(50);
  shard.start();
  await tick(50);
  t.deepEqual(atShard, []);
});
