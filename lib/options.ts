import { availableParallelism } from 'node:os';
import { InvalidOptionError } from './errors.js';
import { type Logger, consoleLogger } from './logger.js';
import { DEFAULT_MAX_LINE_BYTES, MAX_MAX_LINE_BYTES, MIN_MAX_LINE_BYTES } from './protocol/defaults.js';
import { type RedisOptions, type ResolvedRedisOptions, resolveRedisOptions } from './store/redis/options.js';
import { checkOptionNames, integerOption } from './util/check-options.js';

export { DEFAULT_MAX_LINE_BYTES, MAX_MAX_LINE_BYTES, MIN_MAX_LINE_BYTES } from './protocol/defaults.js';
export type { RedisOptions } from './store/redis/options.js';

export interface ServerOptions {
  /**
   * Mailbox shards, each a worker thread. 0 runs the same shard code inline in the
   * acceptor's thread, with no worker. Default: max(1, availableParallelism() - 1).
   */
  shards?: number;
  /** A mailbox holding this many messages answers further COMPOSEs with MESSAGE FAILED. Default 1024. */
  maxMessagesPerUser?: number;
  /** Longest line accepted, LF (and a CR before it) not counted. Default 65536. */
  maxLineBytes?: number;
  /**
   * A connection with no traffic either way for this long, and no command the server is
   * still working on, is closed (after the replies it is owed; destroyed if still idle
   * one more period later); 0 never closes it.
   * Default 300000 (5 min).
   */
  idleTimeoutMs?: number;
  /**
   * Commands of one connection awaiting their reply before the server stops reading
   * from it until replies drain. Default 1024.
   */
  maxInFlight?: number;
  /**
   * Keep mailboxes on disk in this directory (one SQLite file per shard) so they survive
   * crashes and restarts. Default: none, mailboxes are kept in memory.
   */
  dataDir?: string;
  /**
   * With dataDir: sync every commit to disk, so acknowledged messages also survive power
   * loss (slower). Without it they survive the process being killed at any moment.
   * Default false.
   */
  fsync?: boolean;
  /**
   * With dataDir: the most bytes each shard's file may grow to; past it COMPOSE is
   * answered MESSAGE FAILED, as on a full disk. Default: no cap.
   */
  maxStoreBytes?: number;
  /**
   * Keep mailboxes in Redis (`{ url }`) or a Redis Cluster (`{ cluster: ['host:port', ...] }`)
   * instead, so several servers can serve the same users. Excludes dataDir.
   */
  redis?: RedisOptions;
  /** Where the server reports shard crashes and other trouble. Default: stderr. */
  logger?: Logger;
}

export type ResolvedOptions = Required<Omit<ServerOptions, 'dataDir' | 'maxStoreBytes' | 'redis'>> &
  Pick<ServerOptions, 'dataDir' | 'maxStoreBytes'> & { redis?: ResolvedRedisOptions };

export const DEFAULT_MAX_MESSAGES_PER_USER = 1024;
export const DEFAULT_IDLE_TIMEOUT_MS = 300_000;
export const DEFAULT_MAX_IN_FLIGHT = 1024;

export function defaultShardCount(): number {
  return Math.max(1, availableParallelism() - 1);
}

export const MAX_SHARDS = 256;
export const MAX_MAX_IN_FLIGHT = 1_000_000;

type NumericOption = 'shards' | 'maxMessagesPerUser' | 'maxLineBytes' | 'idleTimeoutMs' | 'maxInFlight' | 'maxStoreBytes';

const LIMITS: Record<NumericOption, readonly [min: number, max: number]> = {
  shards: [0, MAX_SHARDS],
  maxMessagesPerUser: [1, 2 ** 32 - 1],
  maxLineBytes: [MIN_MAX_LINE_BYTES, MAX_MAX_LINE_BYTES],
  idleTimeoutMs: [0, 2 ** 31 - 1],
  maxInFlight: [1, MAX_MAX_IN_FLIGHT],
  maxStoreBytes: [64 * 1024, Number.MAX_SAFE_INTEGER],
};
const KNOWN_OPTIONS = [...Object.keys(LIMITS), 'dataDir', 'fsync', 'redis', 'logger'];

/** Checks every option and fills in defaults; throws InvalidOptionError before anything starts. */
export function resolveOptions(options: ServerOptions = {}): ResolvedOptions {
  checkOptionNames(options, KNOWN_OPTIONS, 'createServer()');
  const resolved: ResolvedOptions = {
    shards: integer('shards', options.shards, defaultShardCount()),
    maxMessagesPerUser: integer('maxMessagesPerUser', options.maxMessagesPerUser, DEFAULT_MAX_MESSAGES_PER_USER),
    maxLineBytes: integer('maxLineBytes', options.maxLineBytes, DEFAULT_MAX_LINE_BYTES),
    idleTimeoutMs: integer('idleTimeoutMs', options.idleTimeoutMs, DEFAULT_IDLE_TIMEOUT_MS),
    maxInFlight: integer('maxInFlight', options.maxInFlight, DEFAULT_MAX_IN_FLIGHT),
    dataDir: options.dataDir,
    fsync: options.fsync ?? false,
    maxStoreBytes: options.maxStoreBytes === undefined ? undefined : integer('maxStoreBytes', options.maxStoreBytes, 0),
    logger: options.logger ?? consoleLogger,
  };
  if (options.redis !== undefined) {
    if (options.dataDir !== undefined) throw new InvalidOptionError('redis and dataDir exclude each other: mailboxes live in one place');
    resolved.redis = resolveRedisOptions(options.redis);
  }
  if (resolved.dataDir !== undefined && (typeof resolved.dataDir !== 'string' || resolved.dataDir.length === 0)) {
    throw new InvalidOptionError('invalid dataDir: expected a directory path');
  }
  if (typeof resolved.fsync !== 'boolean') throw new InvalidOptionError(`invalid fsync: expected true or false, got ${String(resolved.fsync)}`);
  if (resolved.dataDir === undefined && (options.fsync === true || options.maxStoreBytes !== undefined)) {
    throw new InvalidOptionError('fsync and maxStoreBytes apply to durable storage: give dataDir too');
  }
  const { logger } = resolved;
  if (typeof logger.error !== 'function' || typeof logger.warn !== 'function' || typeof logger.info !== 'function') {
    throw new InvalidOptionError('logger must have info(), warn() and error() methods');
  }
  return resolved;
}

function integer(name: NumericOption, value: unknown, fallback: number): number {
  const [min, max] = LIMITS[name];
  return integerOption(name, value, min, max, fallback);
}
