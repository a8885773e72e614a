import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { InvalidOptionError } from '../errors.js';
import { DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_LINE_BYTES, DEFAULT_MAX_MESSAGES_PER_USER, MAX_MAX_IN_FLIGHT, MAX_MAX_LINE_BYTES, MAX_SHARDS, MIN_MAX_LINE_BYTES, defaultShardCount, type RedisOptions } from '../options.js';
import { DEFAULT_HOST, DEFAULT_PORT } from '../protocol/defaults.js';
import { createServer } from '../server.js';
import { DEFAULT_WAIT_TIMEOUT_MS } from '../store/redis/defaults.js';
import { UsageError, integerFlag } from './flags.js';

export const DEFAULT_DATA_DIR = './pigeonhole-data';

export const SERVE_HELP = `Usage: pigeonhole serve [options]

Runs a pigeonhole server until SIGINT or SIGTERM, then closes gracefully.

Options:
  --host HOST            address to listen on (default ${DEFAULT_HOST}: this machine only;
                         use 0.0.0.0 or :: to accept connections from a network)
  --port N               TCP port, 0 picks a free one (default ${DEFAULT_PORT})
  --shards N             mailbox shard worker threads; 0 runs them inline in the
                         acceptor thread (default ${defaultShardCount()} here: cores - 1, at least 1)
  --max-messages N       messages a mailbox holds before COMPOSE to it fails
                         (default ${DEFAULT_MAX_MESSAGES_PER_USER})
  --max-line N           longest line in bytes; a longer one drops the connection
                         (default ${DEFAULT_MAX_LINE_BYTES})
  --idle-timeout SECONDS close a connection with no traffic either way for this long;
                         0 never does (default ${DEFAULT_IDLE_TIMEOUT_MS / 1000})
  --max-in-flight N      commands of one connection awaiting replies before the server
                         stops reading from it (default ${DEFAULT_MAX_IN_FLIGHT})
  --data-dir DIR         keep mailboxes on disk in DIR, one SQLite file per shard
                         (default ${DEFAULT_DATA_DIR}); they survive crashes and restarts
  --memory               keep mailboxes in memory only: lost when the server stops
  --fsync                sync every commit to disk: acknowledged messages also survive
                         power loss (slower); without it they survive the process being
                         killed at any moment
  --redis URL            keep mailboxes in one Redis (7 or later, or Valkey) at URL,
                         redis://[USER:PASSWORD@]HOST:PORT; several servers may share it
  --redis-cluster HOST:PORT[,HOST:PORT...]
                         keep mailboxes in a Redis Cluster; give some of its nodes, the
                         rest are discovered
  --redis-wait N         with --redis or --redis-cluster: answer MESSAGE SENT only once
                         N replicas have the message (Redis WAIT; default 0)
  --redis-wait-timeout MS
                         how long --redis-wait waits; if fewer replicas confirm by then,
                         the connection is closed instead of answered (default ${DEFAULT_WAIT_TIMEOUT_MS})
  -h, --help             show this help
`;

export async function serve(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      shards: { type: 'string' },
      'max-messages': { type: 'string' },
      'max-line': { type: 'string' },
      'idle-timeout': { type: 'string' },
      'max-in-flight': { type: 'string' },
      'data-dir': { type: 'string' },
      memory: { type: 'boolean' },
      fsync: { type: 'boolean' },
      redis: { type: 'string' },
      'redis-cluster': { type: 'string' },
      'redis-wait': { type: 'string' },
      'redis-wait-timeout': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(SERVE_HELP);
    return 0;
  }
  const host = values.host ?? DEFAULT_HOST;
  if (host.length === 0) throw new UsageError('--host cannot be empty');
  const port = integerFlag('port', values.port, 0, 65_535) ?? DEFAULT_PORT;
  const idleSeconds = integerFlag('idle-timeout', values['idle-timeout'], 0, 2_147_483);
  if (values.memory && values['data-dir'] !== undefined) throw new UsageError('--memory and --data-dir exclude each other');
  if (values.memory && values.fsync) throw new UsageError('--fsync applies to on-disk storage; drop --memory');
  if (values['data-dir'] === '') throw new UsageError('--data-dir cannot be empty');
  const redis = redisFlags(values);
  if (redis !== undefined && (values.memory || values['data-dir'] !== undefined || values.fsync)) {
    throw new UsageError('--redis and --redis-cluster keep mailboxes in Redis: drop --memory, --data-dir and --fsync');
  }
  const dataDir = values.memory || redis !== undefined ? undefined : resolve(values['data-dir'] ?? DEFAULT_DATA_DIR);

  let server;
  try {
    server = createServer({
      shards: integerFlag('shards', values.shards, 0, MAX_SHARDS),
      maxMessagesPerUser: integerFlag('max-messages', values['max-messages'], 1, 2 ** 32 - 1),
      maxLineBytes: integerFlag('max-line', values['max-line'], MIN_MAX_LINE_BYTES, MAX_MAX_LINE_BYTES),
      idleTimeoutMs: idleSeconds === undefined ? undefined : idleSeconds * 1000,
      maxInFlight: integerFlag('max-in-flight', values['max-in-flight'], 1, MAX_MAX_IN_FLIGHT),
      dataDir,
      fsync: values.fsync === true,
      ...(redis === undefined ? {} : { redis }),
    });
  } catch (err) {
    if (err instanceof InvalidOptionError) throw new UsageError(err.message);
    throw err;
  }

  // Signals are caught before listen(): one sent as soon as `listening on` appears, or
  // during startup, still closes gracefully instead of killing the process.
  let stop: (signal: NodeJS.Signals) => void = () => {};
  const stopped = new Promise<void>((resolve) => {
    stop = (signal) => {
      process.stderr.write(`pigeonhole: ${signal}: closing\n`);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
  });
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);

  let address: AddressInfo;
  try {
    address = await server.listen({ port, host });
  } catch (err) {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    // A failed listen() keeps the shards it started (a library caller may retry); the CLI
    // won't, and their worker threads would keep the process from ever exiting.
    await server.close();
    throw err;
  }
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const { shards } = server.options;
  process.stdout.write(`listening on ${shown}:${address.port}\n`);
  const threads = shards === 0 ? 'mailboxes inline in the acceptor thread' : `${shards} mailbox shard worker thread${shards === 1 ? '' : 's'}`;
  const storage =
    redis !== undefined
      ? `in Redis at ${redis.url === undefined ? `cluster ${(redis.cluster ?? []).join(',')}` : describeUrl(redis.url)}`
      : dataDir === undefined
        ? 'in memory (lost when the server stops)'
        : `in ${dataDir}${values.fsync ? ' (fsync on every commit)' : ''}`;
  process.stderr.write(`pigeonhole: ${threads}; mailboxes stored ${storage}\n`);

  await stopped;
  await server.close();
  process.stderr.write('pigeonhole: closed\n');
  return 0;
}

/** The server's `redis` option from the --redis* flags, or undefined when none is given. */
function redisFlags(values: { redis?: string; 'redis-cluster'?: string; 'redis-wait'?: string; 'redis-wait-timeout'?: string }): RedisOptions | undefined {
  const url = values.redis;
  const cluster = values['redis-cluster'];
  const waitReplicas = integerFlag('redis-wait', values['redis-wait'], 0, 1_000);
  const waitTimeoutMs = integerFlag('redis-wait-timeout', values['redis-wait-timeout'], 1, 600_000);
  if (url === undefined && cluster === undefined) {
    if (waitReplicas !== undefined || waitTimeoutMs !== undefined) throw new UsageError('--redis-wait and --redis-wait-timeout need --redis or --redis-cluster');
    return undefined;
  }
  if (url !== undefined && cluster !== undefined) throw new UsageError('--redis and --redis-cluster exclude each other');
  return {
    ...(url === undefined ? { cluster: (cluster as string).split(',').map((seed) => seed.trim()) } : { url }),
    ...(waitReplicas === undefined ? {} : { waitReplicas }),
    ...(waitTimeoutMs === undefined ? {} : { waitTimeoutMs }),
  };
}

/** A Redis URL for the start-up line, without its password. */
function describeUrl(url: string): string {
  const parsed = new URL(url);
  return `${parsed.protocol}//${parsed.host}${parsed.pathname === '/' ? '' : parsed.pathname}`;
}
