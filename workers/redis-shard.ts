// A mailbox shard's thread entry when mailboxes live in Redis: as workers/shard.ts, plus
// the Redis store, imported here so that only these threads load the Redis client.
import { serveShard } from '../lib/shards/host.js';
import type { ShardTaskData } from '../lib/shards/messages.js';
import { RedisStore } from '../lib/store/redis/redis-store.js';

export default function redisShardTask({ shardId, port, config, rings }: ShardTaskData): Promise<void> {
  return serveShard(port, shardId, config, rings, (options) => RedisStore.open(options));
}
