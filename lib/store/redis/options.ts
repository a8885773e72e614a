import { InvalidOptionError } from '../../errors.js';
import { checkOptionNames, integerOption } from '../../util/check-options.js';
import type { RedisTarget } from './link.js';
import { DEFAULT_KEY_PREFIX, DEFAULT_WAIT_TIMEOUT_MS } from './defaults.js';

/** `createServer({ redis })`: keep mailboxes in Redis or a Redis Cluster. */
export interface RedisOptions {
  /** One Redis: `redis://[user:password@]host:port[/db]` (or `rediss://` for TLS). */
  url?: string;
  /** A Redis Cluster: some of its nodes as `host:port` (the rest are discovered). */
  cluster?: string[];
  /**
   * Replicas that must confirm a COMPOSE (Redis WAIT) before it is answered MESSAGE
   * SENT; if fewer do in time, its connection is closed instead. Default 0: answered
   * once the master has it.
   */
  waitReplicas?: number;
  /** How long to wait for those replicas, in milliseconds. Default 1000. */
  waitTimeoutMs?: number;
  /**
   * Every key starts `<keyPrefix>:{`, so several independent deployments (or tests) can
   * share one Redis. Letters, digits and `_.:-`; default 'ph'.
   */
  keyPrefix?: string;
}

export interface ResolvedRedisOptions {
  readonly target: RedisTarget;
  readonly waitReplicas: number;
  readonly waitTimeoutMs: number;
  readonly keyPrefix: string;
}

const KNOWN = ['url', 'cluster', 'waitReplicas', 'waitTimeoutMs', 'keyPrefix'];
/** The numeric options' ranges, [min, max], as checked here and taken by the CLI's flags. */
export const REDIS_OPTION_RANGES = {
  waitReplicas: [0, 1_000],
  waitTimeoutMs: [1, 600_000],
} as const satisfies Record<'waitReplicas' | 'waitTimeoutMs', readonly [min: number, max: number]>;
// No braces (they would end the hash tag early) and nothing a reader of redis-cli would trip on.
const KEY_PREFIX = /^[A-Za-z0-9_.:-]{1,64}$/;
const SEED = /^(?:\[[0-9A-Fa-f:.]+\]|[^\s:[\]]+):(\d{1,5})$/;
// Past a few hundred nodes a seed list is a mistake; the client discovers the rest.
const MAX_SEEDS = 100;

/** Checks `createServer()`'s `redis` option; throws InvalidOptionError. */
export function resolveRedisOptions(redis: unknown): ResolvedRedisOptions {
  checkOptionNames(redis, KNOWN, 'redis');
  const { url, cluster, waitReplicas, waitTimeoutMs, keyPrefix = DEFAULT_KEY_PREFIX } = redis as RedisOptions;
  if (typeof keyPrefix !== 'string' || !KEY_PREFIX.test(keyPrefix)) throw new InvalidOptionError(`invalid redis.keyPrefix: expected 1 to 64 letters, digits or _.:-, got ${String(keyPrefix)}`);
  if ((url === undefined) === (cluster === undefined)) throw new InvalidOptionError('redis needs either url (one Redis) or cluster (seed nodes), not both');
  let target: RedisTarget;
  if (url !== undefined) {
    if (typeof url !== 'string' || !/^rediss?:\/\/[^/\s]/.test(url) || !URL.canParse(url)) {
      throw new InvalidOptionError(`invalid redis.url: expected redis://HOST:PORT, got ${String(url)}`);
    }
    target = { url };
  } else {
    if (!Array.isArray(cluster) || cluster.length === 0 || cluster.length > MAX_SEEDS) {
      throw new InvalidOptionError(`invalid redis.cluster: expected 1 to ${MAX_SEEDS} node addresses as 'HOST:PORT'`);
    }
    for (const seed of cluster as unknown[]) {
      const match = typeof seed === 'string' ? SEED.exec(seed) : null;
      const port = Number(match?.[1]);
      if (match === null || port < 1 || port > 65_535) throw new InvalidOptionError(`invalid redis.cluster node ${JSON.stringify(seed)}: expected 'HOST:PORT'`);
    }
    target = { cluster: [...cluster] };
  }
  return {
    target,
    waitReplicas: integerOption('redis.waitReplicas', waitReplicas, ...REDIS_OPTION_RANGES.waitReplicas, 0),
    waitTimeoutMs: integerOption('redis.waitTimeoutMs', waitTimeoutMs, ...REDIS_OPTION_RANGES.waitTimeoutMs, DEFAULT_WAIT_TIMEOUT_MS),
    keyPrefix,
  };
}
