// Imported by protocol-redis.test.ts before protocol.test.ts, so it runs first: every
// server of that file keeps its mailboxes in one real 3-master Redis Cluster, under a
// key prefix of its own (the tests use fixed names such as bob and alice).
import { redisMissing, redisTest, useRedisCluster } from '../helpers/redis.js';
import { adjustServerOptions, uniqueName } from '../helpers/server.js';
import { skipSuite } from '../helpers/suite.js';

if (redisMissing === null) {
  const cluster = useRedisCluster();
  // A test's own options win; each server gets a key prefix of its own.
  adjustServerOptions((options) => ({ redis: { cluster: cluster().addresses, keyPrefix: uniqueName('proto') }, ...options }));
} else {
  redisTest();
  skipSuite(redisMissing);
}
