// Real redis-server processes for a test file: one standalone server or a 3-master
// cluster on free ports of 127.0.0.1, started once per file and stopped after it.
//
// Without redis-server on PATH the Redis tests are skipped, loudly; under CI (CI=true)
// that is a failure instead, since .ci/run installs it.
import test from 'ava';
import { RedisCluster, findRedisCli } from '../../bench/redis-cluster.js';
import { RedisProcess, type RedisProcessOptions, findRedisServer } from '../../bench/redis.js';

const binary = findRedisServer();
const cli = binary === null ? null : findRedisCli(binary);

/** Why Redis tests cannot run here, or null when they can. */
export const redisMissing: string | null =
  binary === null ? 'redis-server is not on PATH (apt-get install redis-server)' : cli === null ? 'redis-cli is not beside redis-server' : null;

let warned = false;

/**
 * `test.serial` when Redis is here; otherwise `test.skip`, after saying so on stderr
 * (and, under CI, registering one failing test: a CI run must not pass without Redis).
 */
export function redisTest(): typeof test.serial {
  if (redisMissing === null) return test.serial;
  if (!warned) {
    warned = true;
    if (process.env.CI === 'true') {
      test('redis-server is installed (CI runs every Redis test)', (t) => t.fail(redisMissing ?? ''));
    } else {
      process.stderr.write(`\n*** REDIS TESTS SKIPPED: ${redisMissing} ***\n\n`);
    }
  }
  return test.skip as unknown as typeof test.serial;
}

/** The skip reason to hand to storeContract(), with the same CI rule as redisTest(). */
export function redisContractSkip(): string | undefined {
  redisTest();
  return redisMissing ?? undefined;
}

/** A redis-server started before the file's tests and stopped after them. */
export function useRedisServer(options: RedisProcessOptions = {}): () => RedisProcess {
  let server: RedisProcess | null = null;
  if (redisMissing === null) {
    test.before(async () => {
      server = await RedisProcess.start(binary as string, { log: 'ignore', ...options });
    });
    test.after.always(async () => {
      await server?.stop();
    });
  }
  return () => {
    if (server === null) throw new Error('no redis-server: did the before hook run?');
    return server;
  };
}

/** A 3-master Redis Cluster started before the file's tests and stopped after them. */
export function useRedisCluster(options: Omit<RedisProcessOptions, 'cluster'> = {}): () => RedisCluster {
  let cluster: RedisCluster | null = null;
  if (redisMissing === null) {
    test.before(async () => {
      cluster = await RedisCluster.start(binary as string, cli as string, 3, { log: 'ignore', ...options });
    });
    test.after.always(async () => {
      await cluster?.stop();
    });
  }
  return () => {
    if (cluster === null) throw new Error('no Redis cluster: did the before hook run?');
    return cluster;
  };
}

export function redisUrl(server: RedisProcess): string {
  return `redis://${server.address}`;
}
