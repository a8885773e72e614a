import { availableParallelism, totalmem } from 'node:os';
import { InvalidOptionError } from './errors.js';
import { type Logger, consoleLogger } from './logger.js';
import { DEFAULT_MAX_LINE_BYTES, MAX_MAX_LINE_BYTES, MIN_MAX_LINE_BYTES } from './protocol/defaults.js';
import { acceptorsUnsupported } from './acceptors/shared-port.js';
import { type ResolvedServerTls, type ServerTlsOptions, resolveServerTls } from './tls/server-tls.js';
import { type RedisOptions, type ResolvedRedisOptions, resolveRedisOptions } from './store/redis/options.js';
import type { ShardTransport } from './shards/worker-shards.js';
import { mostRepliesHeld } from './session/reply-budget.js';
import { checkOptionNames, integerOption } from './util/check-options.js';
import { connectionsFor, descriptorLimit } from './util/descriptors.js';

export type { ShardTransport } from './shards/worker-shards.js';

export { DEFAULT_MAX_LINE_BYTES, MAX_MAX_LINE_BYTES, MIN_MAX_LINE_BYTES } from './protocol/defaults.js';
export type { RedisOptions } from './store/redis/options.js';
export { REDIS_OPTION_RANGES } from './store/redis/options.js';

export interface ServerOptions {
  /**
   * Mailbox shards, each a worker thread. 0 runs the same shard code inline in the
   * acceptor's thread, with no worker. Default: max(1, availableParallelism() - 1).
   */
  shards?: number;
  /**
   * Threads that accept and serve connections (frame, parse, reply), each routing to the
   * same shards. 1: the thread that calls listen() does it all. More: that many less one
   * further worker threads accept on the same port, each with its own channel to every
   * shard. More than 1 needs Linux and at least one worker shard. Default 1.
   */
  acceptors?: number;
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
   * The most bytes the stored messages may take, split evenly between the shards; past
   * it COMPOSE is answered MESSAGE FAILED (reads go on). In memory, where mailboxes and
   * senders count too, the default is a quarter of the machine's memory (or of the
   * container's, when it has a limit); on disk there is no cap by default
   * (minFreeDiskBytes keeps the disk usable).
   */
  maxStoreBytes?: number;
  /**
   * With dataDir: COMPOSE is refused while the data directory's disk has less than this
   * free (reads, which make room, go on). Default: a twentieth of that filesystem, from
   * 1 MiB to 64 MiB; 0 turns this off.
   */
  minFreeDiskBytes?: number;
  /**
   * Connections open at once, on all acceptor threads together; more are closed at once,
   * unanswered. Default: the process's file descriptor limit less a tenth of it (at
   * least 128) for the server's own files.
   */
  maxConnections?: number;
  /** Connections open at once from one IP address, on all acceptor threads together; 0 sets no such limit. Default 256. */
  maxConnectionsPerIp?: number;
  /**
   * New connections one IP address (for IPv6, its /64) may open per second, counted over
   * a sliding second on all acceptor threads together; more are closed at once,
   * unanswered, before a TLS handshake. 0 sets no such limit. Default 256.
   */
  maxConnectionRatePerIp?: number;
  /**
   * A command or message line must be complete this long after its first byte arrived,
   * or the connection is closed: a peer trickling bytes cannot hold it. 0 never closes.
   * Default 60000 (1 min).
   */
  lineTimeoutMs?: number;
  /**
   * Bytes of unfinished lines the server holds across all connections; past it, the
   * connections holding the most are closed first. At least maxLineBytes + 1. With
   * several acceptor threads each holds an equal share, which must exceed maxLineBytes.
   * Default 67108864 (64 MiB).
   */
  maxLineBufferBytes?: number;
  /**
   * Bytes of replies written and not yet taken by their peers that the server holds
   * across all connections; past it, the connections holding the most are closed first.
   * One connection holds at most 4 MiB plus one READ reply (maxLineBytes and its sender),
   * and each acceptor thread's equal share must exceed that. Default 268435456 (256 MiB),
   * or twice what one connection holds per acceptor thread when that is more.
   */
  maxReplyBufferBytes?: number;
  /**
   * Keep mailboxes in Redis (`{ url }`) or a Redis Cluster (`{ cluster: ['host:port', ...] }`)
   * instead, so several servers can serve the same users. Excludes dataDir.
   */
  redis?: RedisOptions;
  /**
   * How batches travel between the acceptor and worker shards: 'ring', a pair of
   * SharedArrayBuffer rings per shard, so a busy shard takes batches without being woken;
   * or 'port', a postMessage per batch. Default 'ring'.
   */
  shardTransport?: ShardTransport;
  /**
   * Where the server reports shard crashes and other trouble: a pino logger, or anything
   * with info(), warn() and error() called pino's way, `(fields, message)`. Wrap a logger
   * that takes only a message in lineLogger(). Default: stderr.
   */
  logger?: Logger;
  /**
   * Serve over TLS only. With `ca`, clients must present a certificate signed by it, and
   * LOGIN must name that certificate's subject CN. Default: plain TCP.
   */
  tls?: ServerTlsOptions;
}

export type ResolvedOptions = Required<Omit<ServerOptions, 'dataDir' | 'maxStoreBytes' | 'minFreeDiskBytes' | 'tls' | 'redis'>> &
  Pick<ServerOptions, 'dataDir' | 'maxStoreBytes' | 'minFreeDiskBytes'> & { readonly tls: ResolvedServerTls | null; redis?: ResolvedRedisOptions };

export const DEFAULT_MAX_MESSAGES_PER_USER = 1024;
export const DEFAULT_IDLE_TIMEOUT_MS = 300_000;
export const DEFAULT_MAX_IN_FLIGHT = 1024;
export const DEFAULT_MAX_CONNECTIONS_PER_IP = 256;
export const DEFAULT_MAX_CONNECTION_RATE_PER_IP = 256;
export const DEFAULT_LINE_TIMEOUT_MS = 60_000;
export const DEFAULT_MAX_LINE_BUFFER_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_REPLY_BUFFER_BYTES = 256 * 1024 * 1024;

/** The default maxConnections: the descriptor limit (`ulimit -n`) less headroom for the server's own files. */
export function defaultMaxConnections(): number {
  return connectionsFor(descriptorLimit());
}

/** The default maxStoreBytes in memory: a quarter of the machine's (or container's) memory. */
export function defaultMemoryStoreBytes(): number {
  const constrained = process.constrainedMemory?.() ?? 0;
  const memory = constrained > 0 ? Math.min(constrained, totalmem()) : totalmem();
  return Math.floor(memory / 4);
}

export function defaultShardCount(): number {
  return Math.max(1, availableParallelism() - 1);
}

export const MAX_SHARDS = 256;
export const MAX_ACCEPTORS = 64;
export const MAX_MAX_IN_FLIGHT = 1_000_000;

/** The options that are whole numbers. */
export type NumericOption =
  | 'shards'
  | 'acceptors'
  | 'maxMessagesPerUser'
  | 'maxLineBytes'
  | 'idleTimeoutMs'
  | 'maxInFlight'
  | 'maxStoreBytes'
  | 'minFreeDiskBytes'
  | 'maxConnections'
  | 'maxConnectionsPerIp'
  | 'maxConnectionRatePerIp'
  | 'lineTimeoutMs'
  | 'maxLineBufferBytes'
  | 'maxReplyBufferBytes';

/**
 * Each numeric option's range, [min, max]: resolveOptions() checks them, and the CLI's
 * flags take the same (scaled where a flag counts seconds), so the two never disagree.
 */
export const OPTION_RANGES: Readonly<Record<NumericOption, readonly [min: number, max: number]>> = {
  shards: [0, MAX_SHARDS],
  acceptors: [1, MAX_ACCEPTORS],
  maxMessagesPerUser: [1, 2 ** 32 - 1],
  maxLineBytes: [MIN_MAX_LINE_BYTES, MAX_MAX_LINE_BYTES],
  idleTimeoutMs: [0, 2 ** 31 - 1],
  maxInFlight: [1, MAX_MAX_IN_FLIGHT],
  maxStoreBytes: [64 * 1024, Number.MAX_SAFE_INTEGER],
  minFreeDiskBytes: [0, Number.MAX_SAFE_INTEGER],
  maxConnections: [1, 10_000_000],
  maxConnectionsPerIp: [0, 10_000_000],
  maxConnectionRatePerIp: [0, 10_000_000],
  lineTimeoutMs: [0, 2 ** 31 - 1],
  maxLineBufferBytes: [MIN_MAX_LINE_BYTES + 1, Number.MAX_SAFE_INTEGER],
  maxReplyBufferBytes: [1024 * 1024, Number.MAX_SAFE_INTEGER],
};
const KNOWN_OPTIONS = [...Object.keys(OPTION_RANGES), 'dataDir', 'fsync', 'redis', 'shardTransport', 'logger', 'tls'];
const TRANSPORTS: readonly ShardTransport[] = ['ring', 'port'];

/** Checks every option and fills in defaults; throws InvalidOptionError before anything starts. */
export function resolveOptions(options: ServerOptions = {}): ResolvedOptions {
  checkOptionNames(options, KNOWN_OPTIONS, 'createServer()');
  const acceptors = integer('acceptors', options.acceptors, 1);
  const maxLineBytes = integer('maxLineBytes', options.maxLineBytes, DEFAULT_MAX_LINE_BYTES);
  const resolved: ResolvedOptions = {
    shards: integer('shards', options.shards, defaultShardCount()),
    acceptors,
    maxMessagesPerUser: integer('maxMessagesPerUser', options.maxMessagesPerUser, DEFAULT_MAX_MESSAGES_PER_USER),
    maxLineBytes,
    idleTimeoutMs: integer('idleTimeoutMs', options.idleTimeoutMs, DEFAULT_IDLE_TIMEOUT_MS),
    maxInFlight: integer('maxInFlight', options.maxInFlight, DEFAULT_MAX_IN_FLIGHT),
    dataDir: options.dataDir,
    fsync: options.fsync ?? false,
    maxStoreBytes: options.maxStoreBytes === undefined ? undefined : integer('maxStoreBytes', options.maxStoreBytes),
    minFreeDiskBytes: options.minFreeDiskBytes === undefined ? undefined : integer('minFreeDiskBytes', options.minFreeDiskBytes),
    maxConnections: integer('maxConnections', options.maxConnections, defaultMaxConnections()),
    maxConnectionsPerIp: integer('maxConnectionsPerIp', options.maxConnectionsPerIp, DEFAULT_MAX_CONNECTIONS_PER_IP),
    maxConnectionRatePerIp: integer('maxConnectionRatePerIp', options.maxConnectionRatePerIp, DEFAULT_MAX_CONNECTION_RATE_PER_IP),
    lineTimeoutMs: integer('lineTimeoutMs', options.lineTimeoutMs, DEFAULT_LINE_TIMEOUT_MS),
    maxLineBufferBytes: integer('maxLineBufferBytes', options.maxLineBufferBytes, DEFAULT_MAX_LINE_BUFFER_BYTES),
    maxReplyBufferBytes: integer('maxReplyBufferBytes', options.maxReplyBufferBytes, defaultMaxReplyBufferBytes(acceptors, maxLineBytes)),
    shardTransport: options.shardTransport === undefined ? 'ring' : options.shardTransport,
    logger: options.logger ?? consoleLogger,
    tls: options.tls === undefined ? null : resolveServerTls(options.tls),
  };
  if (options.redis !== undefined) {
    if (options.dataDir !== undefined) throw new InvalidOptionError('redis and dataDir exclude each other: mailboxes live in one place');
    // Redis caps its own memory (maxmemory): the cap here is for the stores pigeonhole keeps.
    if (options.maxStoreBytes !== undefined) throw new InvalidOptionError('maxStoreBytes caps the memory and SQLite stores; with redis, set maxmemory in Redis');
    resolved.redis = resolveRedisOptions(options.redis);
  } else if (resolved.dataDir === undefined) {
    resolved.maxStoreBytes ??= defaultMemoryStoreBytes();
  }
  // One connection that keeps up may hold this much for a moment: it must not be cut for it.
  if (acceptorShare(resolved.maxReplyBufferBytes, resolved.acceptors) <= mostRepliesHeld(resolved.maxLineBytes)) {
    throw new InvalidOptionError(
      `invalid maxReplyBufferBytes: ${resolved.acceptors > 1 ? `each of the ${resolved.acceptors} acceptor threads' equal share of it` : 'it'} must exceed what one connection may hold (${mostRepliesHeld(resolved.maxLineBytes)} bytes: 4 MiB in flight and a reply of maxLineBytes)`,
    );
  }
  if (resolved.maxLineBufferBytes <= resolved.maxLineBytes) {
    throw new InvalidOptionError(`invalid maxLineBufferBytes: it must exceed maxLineBytes (${resolved.maxLineBytes}), or one long line would be refused`);
  }
  if (resolved.acceptors > 1) checkAcceptors(resolved);
  if (!TRANSPORTS.includes(resolved.shardTransport)) {
    throw new InvalidOptionError(`invalid shardTransport: expected 'ring' or 'port', got ${String(resolved.shardTransport)}`);
  }
  if (resolved.dataDir !== undefined && (typeof resolved.dataDir !== 'string' || resolved.dataDir.length === 0)) {
    throw new InvalidOptionError('invalid dataDir: expected a directory path');
  }
  if (typeof resolved.fsync !== 'boolean') throw new InvalidOptionError(`invalid fsync: expected true or false, got ${String(resolved.fsync)}`);
  if (resolved.dataDir === undefined && (options.fsync === true || options.minFreeDiskBytes !== undefined)) {
    throw new InvalidOptionError(
      options.redis === undefined
        ? 'fsync and minFreeDiskBytes apply to durable storage: give dataDir too'
        : "fsync and minFreeDiskBytes apply to pigeonhole's own durable storage (dataDir); with redis, Redis's persistence settings (appendfsync) decide",
    );
  }
  const { logger } = resolved;
  if (typeof logger.error !== 'function' || typeof logger.warn !== 'function' || typeof logger.info !== 'function') {
    throw new InvalidOptionError('logger must have info(), warn() and error() methods');
  }
  if (logger.debug !== undefined && typeof logger.debug !== 'function') throw new InvalidOptionError('logger.debug, when present, must be a method');
  return resolved;
}

/** Several acceptor threads: where they can work, and what they need. */
function checkAcceptors({ acceptors, shards, maxLineBufferBytes, maxLineBytes }: ResolvedOptions): void {
  const unsupported = acceptorsUnsupported();
  if (unsupported !== null) throw new InvalidOptionError(`invalid acceptors: ${unsupported}`);
  if (shards === 0) {
    throw new InvalidOptionError(`invalid acceptors: ${acceptors} acceptor threads need worker shards (shards >= 1) to route to; inline shards (shards: 0) live in the listening thread`);
  }
  // Each thread holds its share of the unfinished-line budget.
  if (acceptorShare(maxLineBufferBytes, acceptors) <= maxLineBytes) {
    throw new InvalidOptionError(`invalid maxLineBufferBytes: each of the ${acceptors} acceptor threads holds an equal share of it, which must exceed maxLineBytes (${maxLineBytes})`);
  }
}

/** The default maxReplyBufferBytes: 256 MiB, or twice what one connection may hold per acceptor thread when that is more. */
export function defaultMaxReplyBufferBytes(acceptors: number, maxLineBytes: number): number {
  return Math.max(DEFAULT_MAX_REPLY_BUFFER_BYTES, acceptors * 2 * mostRepliesHeld(maxLineBytes));
}

/** An acceptor thread's share of a server-wide budget (maxLineBufferBytes, maxReplyBufferBytes). */
export function acceptorShare(budget: number, acceptors: number): number {
  return Math.floor(budget / acceptors);
}

function integer(name: NumericOption, value: unknown, fallback?: number): number {
  const [min, max] = OPTION_RANGES[name];
  return integerOption(name, value, min, max, fallback);
}
