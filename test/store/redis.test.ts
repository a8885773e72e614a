// The store contract against real Redis: one server, and a 3-master cluster.
import { RedisStore } from '../../lib/store/redis/redis-store.js';
import type { StoreLimits } from '../../lib/store/store.js';
import { redisContractSkip, redisUrl, useRedisCluster, useRedisServer } from '../helpers/redis.js';
import { storeContract } from './store.contract.js';

const server = useRedisServer();
const cluster = useRedisCluster();
const skip = redisContractSkip();

// Each case its own key prefix: cases share one Redis and must not see each other's mail.
const standalone = (limits: StoreLimits, key: string): Promise<RedisStore> =>
  RedisStore.open({ target: { url: redisUrl(server()) }, keyPrefix: `test-${key}`, ...limits });
const clustered = (limits: StoreLimits, key: string): Promise<RedisStore> =>
  RedisStore.open({ target: { cluster: cluster().addresses }, keyPrefix: `test-${key}`, ...limits });

storeContract('redis', standalone, {
  reopen: async (store, limits, key) => (await store.close(), standalone(limits, key)),
  ...(skip === undefined ? {} : { skip }),
});

storeContract('redis cluster', clustered, {
  reopen: async (store, limits, key) => (await store.close(), clustered(limits, key)),
  ...(skip === undefined ? {} : { skip }),
});
