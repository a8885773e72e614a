import test from 'ava';
import { MessageChannel } from 'node:worker_threads';
import { ShardError } from '../../lib/errors.js';
import type { ShardSink } from '../../lib/shards/backend.js';
import { BatchChannel } from '../../lib/shards/batch-channel.js';
import { LinkedShards } from '../../lib/shards/linked-shards.js';
import { type RingBuffers, createRingBuffers } from '../../lib/shards/ring-channel.js';
import { PORT_GRACE_MS } from '../../lib/shards/worker-shard.js';
import type { AcceptorLinkEnd } from '../../lib/shards/worker-shards.js';
import { tick, until } from '../helpers/line-client.js';

/** A link end for the acceptor side, and the shard's end of the same channel, which records the first byte of each batch it takes. */
function link(rings: RingBuffers | null): { end: AcceptorLinkEnd; shard: BatchChannel; taken: number[] } {
  const { port1, port2 } = new MessageChannel();
  const taken: number[] = [];
  const shard = new BatchChannel(port2, rings, 'shard', (batch) => void taken.push(batch[0] as number));
  return { end: { port: port1, rings }, shard, taken };
}

const batch = (first: number): Buffer => Buffer.alloc(40, first);
const died = new ShardError('PH_ERR_SHARD_CRASHED', 'shard 0 died');

/** LinkedShards over `old`, with a sink that logs replies and losses, and sends `resend` at each loss (as a router does). */
async function linked(old: AcceptorLinkEnd, onDown: (shards: LinkedShards) => void = () => {}): Promise<{ shards: LinkedShards; events: string[] }> {
  const events: string[] = [];
  const sink: ShardSink = {
    onReply: (_shardId, reply) => void events.push(`reply ${reply[0]}`),
    onShardDown: (shardId) => {
      events.push(`down ${shardId}`);
      onDown(shards);
    },
  };
  const shards = new LinkedShards([old], 1);
  await shards.start({ maxMessagesPerUser: 8, store: { kind: 'memory' } }, sink);
  return { shards, events };
}

for (const transport of ['ring', 'port'] as const) {
  test(`${transport}: replies a lost shard gave before the news of its replacement are taken before the loss is reported`, async (t) => {
    const rings = (): RingBuffers | null => (transport === 'ring' ? createRingBuffers() : null);
    const old = link(rings());
    const replacement = link(rings());
    replacement.shard.listen();
    // At the loss, the router sends its unanswered batch again: it goes to the replacement.
    const { shards, events } = await linked(old.end, (s) => s.send(0, batch(5)));
    t.teardown(() => shards.close());
    // The shard answers and dies; the news of its replacement comes first.
    old.shard.send(batch(7));
    shards.replaced(0, replacement.end, died);
    old.shard.close();
    await until(() => replacement.taken.length > 0, 'the batch sent again, at the replacement');
    replacement.shard.send(batch(9));
    await until(() => events.length >= 3, 'the replacement answers');
    t.deepEqual(events, ['reply 7', 'down 0', 'reply 9']);
    t.deepEqual(replacement.taken, [5]);
    replacement.shard.close();
  });
}

test('a shard whose port closed is reported lost at once; batches sent until its replacement comes wait for it, in order', async (t) => {
  const old = link(createRingBuffers());
  const replacement = link(createRingBuffers());
  replacement.shard.listen();
  const { shards, events } = await linked(old.end);
  t.teardown(() => shards.close());
  old.shard.close();
  await until(() => events.length > 0, 'the loss');
  t.deepEqual(events, ['down 0']);
  shards.send(0, batch(1));
  shards.send(0, batch(2));
  await tick(20);
  shards.replaced(0, replacement.end, died);
  shards.send(0, batch(3));
  await until(() => replacement.taken.length >= 3, 'three batches at the replacement');
  t.deepEqual(replacement.taken, [1, 2, 3]);
  t.deepEqual(events, ['down 0'], 'reported once');
  replacement.shard.close();
});

test('a lost shard whose port stays open is reported lost PORT_GRACE_MS after the news of its replacement, with what its ring holds', async (t) => {
  const old = link(createRingBuffers());
  const replacement = link(createRingBuffers());
  replacement.shard.listen();
  const { shards, events } = await linked(old.end);
  t.teardown(() => {
    old.shard.close();
    replacement.shard.close();
    return shards.close();
  });
  old.shard.send(batch(7));
  shards.replaced(0, replacement.end, died);
  await tick(PORT_GRACE_MS / 2);
  t.deepEqual(events, ['reply 7'], 'not yet lost: its port may still bring replies');
  await until(() => events.length >= 2, 'the loss, after the grace');
  shards.send(0, batch(4));
  await until(() => replacement.taken.length > 0, 'a batch at the replacement');
  t.deepEqual(events, ['reply 7', 'down 0']);
  t.deepEqual(replacement.taken, [4]);
});
