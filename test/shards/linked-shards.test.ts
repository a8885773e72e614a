import test from 'ava';
import { MessageChannel } from 'node:worker_threads';
import { ShardError } from '../../lib/errors.js';
import type { ShardSink } from '../../lib/shards/backend.js';
import { BatchChannel } from '../../lib/shards/batch-channel.js';
import { LinkedShards } from '../../lib/shards/linked-shards.js';
import { createRingBuffers } from '../../lib/shards/ring-channel.js';
import type { AcceptorLinkEnd } from '../../lib/shards/worker-shards.js';
import { tick } from '../helpers/line-client.js';

/** A link end for the acceptor side, and the shard's end of the same channel (not reading). */
function link(): { end: AcceptorLinkEnd; shard: BatchChannel } {
  const { port1, port2 } = new MessageChannel();
  const rings = createRingBuffers();
  return { end: { port: port1, rings }, shard: new BatchChannel(port2, rings, 'shard', () => {}) };
}

test('replies a lost shard wrote before the news of its replacement are taken before it is reported down', async (t) => {
  const old = link();
  const replacement = link();
  t.teardown(() => {
    old.shard.close();
    replacement.shard.close();
  });
  const events: string[] = [];
  const sink: ShardSink = {
    onReply: (shardId, batch) => void events.push(`reply ${shardId}:${batch[0]}`),
    onShardDown: (shardId) => void events.push(`down ${shardId}`),
  };
  const shards = new LinkedShards([old.end], 1);
  await shards.start({ maxMessagesPerUser: 8, store: { kind: 'memory' } }, sink);
  t.teardown(() => shards.close());
  // The shard answers, and the news that it died and was replaced arrives in the same
  // turn: before the acceptor's watch of the ring has run, and before its port closed.
  old.shard.send(Buffer.alloc(40, 7));
  shards.replaced(0, replacement.end, new ShardError('PH_ERR_SHARD_CRASHED', 'shard 0 died'));
  // Nothing more arrives from the old channel later, and the new one works.
  replacement.shard.send(Buffer.alloc(40, 9));
  await tick(50);
  t.deepEqual(events, ['reply 0:7', 'down 0', 'reply 0:9']);
});
