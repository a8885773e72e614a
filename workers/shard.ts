// A mailbox shard's thread entry: piscina runs this as one long-lived task per worker.
// It holds the port it was handed and a store, and has no logic of its own.
import { serveShard } from '../lib/shards/host.js';
import type { ShardTaskData } from '../lib/shards/messages.js';

export default function shardTask({ shardId, port, config, rings }: ShardTaskData): Promise<void> {
  return serveShard(port, shardId, config, rings);
}
