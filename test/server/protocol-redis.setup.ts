// Imported by protocol-redis.test.ts before protocol.test.ts, so it runs first: every
// server of that file keeps its mailboxes in one real 3-master Redis Cluster, under a
// key prefix of its own (the tests use fixed names such as bob and alice).
import { redisMissing, redisTest, useRedisCluster } from '../helpers/redis.js';
import { setBaseServerOptions, uniqueName } from '../helpers/server.js';
import { skipSuite } from '../helpers/suite.js';

if (redisMissing === null) {
  const cluster = useRedisCluster();
  setBaseServerOptions(() => ({ redis: { cluster: cluster().addresses, keyPrefix: uniqueName('proto') } }));
} else {
  redisTest();
  skipSuite(redisMissing);
}
