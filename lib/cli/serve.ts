import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import { type MetricsEndpoint, serveMetrics } from '../metrics/http.js';
import {
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_IN_FLIGHT,
  DEFAULT_MAX_LINE_BYTES,
  DEFAULT_MAX_MESSAGES_PER_USER,
  OPTION_RANGES,
  REDIS_OPTION_RANGES,
  type RedisOptions,
  defaultShardCount,
} from '../options.js';
import { DEFAULT_HOST, DEFAULT_PORT } from '../protocol/defaults.js';
import type { ServerOptions } from '../options.js';
import { type PigeonholeServer, createServer } from '../server.js';
import { DEFAULT_WAIT_TIMEOUT_MS } from '../store/redis/defaults.js';
import { showAddress } from '../util/remote-address.js';
import { hostPortFlag, isLoopback } from './addresses.js';
import { type Alternatives, type FlagSpec, blameEnvironment, envName, withEnvironment } from './env.js';
import { LIMIT_FLAGS, LIMITS_HELP, limitOptions } from './limit-flags.js';
import { UsageError, bytesFlag, integerFlag, secondsFlag } from './flags.js';
import { createCliLogger, logFormatFlag, logLevelFlag } from './log.js';
import { inFlagTerms } from './option-flags.js';

export const DEFAULT_DATA_DIR = './pigeonhole-data';

/** Every flag of `serve`: what parseArgs takes, and what PIGEONHOLE_<FLAG> may set. */
export const SERVE_FLAGS = {
  host: { type: 'string' },
  port: { type: 'string' },
  shards: { type: 'string' },
  acceptors: { type: 'string' },
  'max-messages': { type: 'string' },
  'max-line': { type: 'string' },
  'idle-timeout': { type: 'string' },
  'max-in-flight': { type: 'string' },
  'data-dir': { type: 'string' },
  memory: { type: 'boolean' },
  fsync: { type: 'boolean' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'tls-ca': { type: 'string' },
  metrics: { type: 'string' },
  'log-level': { type: 'string' },
  'log-format': { type: 'string' },
  redis: { type: 'string' },
  'redis-cluster': { type: 'string' },
  'redis-wait': { type: 'string' },
  'redis-wait-timeout': { type: 'string' },
  ...LIMIT_FLAGS,
  help: { type: 'boolean', short: 'h' },
} as const satisfies FlagSpec;

export const SERVE_HELP = `Usage: pigeonhole serve [options]

Runs a pigeonhole server until SIGINT or SIGTERM, then closes gracefully. SIGHUP
reads the TLS certificate files again; open connections carry on.

Security: without --tls-ca any client that can reach the server may LOGIN as anyone,
read their mail and send in their name; without TLS all of it crosses the network in
clear text. Listen beyond this machine only with --tls-cert, --tls-key and --tls-ca
(the server warns when it does not).

Options (a size in BYTES may end in K, M or G, 1024-based: 64K, 16M):
  --host HOST            address to listen on (default ${DEFAULT_HOST}: this machine only;
                         0.0.0.0 or :: accept connections from a network: see above)
  --port N               TCP port, 0 picks a free one (default ${DEFAULT_PORT})
  --shards N             mailbox shard worker threads; 0 runs them inline in the
                         acceptor thread (default ${defaultShardCount()} here: cores - 1, at least 1)
  --acceptors N          threads that accept, parse and answer connections, all on the
                         same port and routing to the same shards (default 1; more than 1
                         needs Linux and --shards 1 or more). They pay off when acceptors
                         and shards each have a core: with fewer cores, one is as fast
  --max-messages N       messages a mailbox holds before COMPOSE to it fails
                         (default ${DEFAULT_MAX_MESSAGES_PER_USER})
  --max-line BYTES       longest line in bytes; a longer one drops the connection
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
  --tls-cert FILE        serve over TLS only (1.2 or later), with this certificate chain
                         (PEM); needs --tls-key
  --tls-key FILE         the certificate's private key (PEM)
  --tls-ca FILE          require a client certificate signed by this CA (PEM); LOGIN must
                         then name the certificate's subject CN, any other name is
                         dropped like every protocol error
  --metrics HOST:PORT    serve GET /metrics (Prometheus text) and GET /healthz (200 once
                         every shard is ready, 503 otherwise) over HTTP there
  --log-level LEVEL      fatal, error, warn, info, debug (adds failed TLS handshakes),
                         trace or silent (default info)
  --log-format FORMAT    json: one JSON object per line on stderr; pretty: readable
                         lines; auto: pretty on a terminal, json otherwise (default auto)
${LIMITS_HELP}  -h, --help             show this help

A damaged or missing shard file stops the start: see pigeonhole check and salvage.

Environment:
  Every option can also be set as ${envName('<option>')}, in upper case with _ for -:
  ${envName('port')}=4000, ${envName('tls-cert')}=/etc/pigeonhole/cert.pem, ${envName('memory')}=1
  (switches take 1, true, yes or on; 0, false, no or off). An option given on the
  command line wins over the environment, and so does where it keeps mailboxes:
  --memory on the command line sets aside ${envName('data-dir')}, ${envName('fsync')},
  ${envName('min-free-disk')} and the --redis* variables; --data-dir, --redis and
  --redis-cluster likewise set aside the variables of the other choices.
`;

interface ServeSettings {
  readonly host: string;
  readonly port: number;
  readonly metrics: { host: string; port: number } | undefined;
  /** createServer()'s options as the flags ask (the logger aside); SIGHUP reloads their TLS files. */
  readonly options: ServerOptions;
}

type ServeValues = { [K in keyof typeof SERVE_FLAGS]?: (typeof SERVE_FLAGS)[K]['type'] extends 'boolean' ? boolean : string };

/** The flags checked and turned into settings; a mistake is a UsageError. */
function settingsFrom(values: ServeValues): ServeSettings {
  const host = values.host ?? DEFAULT_HOST;
  if (host.length === 0) throw new UsageError('--host cannot be empty');
  const port = integerFlag('port', values.port, 0, 65_535) ?? DEFAULT_PORT;
  const idleTimeoutMs = secondsFlag('idle-timeout', values['idle-timeout'], ...OPTION_RANGES.idleTimeoutMs);
  if (values.memory && values['data-dir'] !== undefined) throw new UsageError('--memory and --data-dir exclude each other');
  if (values.memory && values.fsync) throw new UsageError('--fsync applies to on-disk storage; drop --memory');
  if (values['data-dir'] === '') throw new UsageError('--data-dir cannot be empty');
  const certFile = values['tls-cert'];
  const keyFile = values['tls-key'];
  const caFile = values['tls-ca'];
  if ((certFile === undefined) !== (keyFile === undefined)) throw new UsageError('--tls-cert and --tls-key go together: give both');
  if (caFile !== undefined && certFile === undefined) throw new UsageError('--tls-ca needs --tls-cert and --tls-key: client certificates are checked over TLS');
  for (const [flag, file] of [['tls-cert', certFile], ['tls-key', keyFile], ['tls-ca', caFile]] as const) {
    if (file === '') throw new UsageError(`--${flag} cannot be empty`);
  }
  const redis = redisFlags(values);
  if (redis !== undefined && (values.memory || values['data-dir'] !== undefined || values.fsync)) {
    throw new UsageError('--redis and --redis-cluster keep mailboxes in Redis: drop --memory, --data-dir and --fsync');
  }
  const dataDir = values.memory || redis !== undefined ? undefined : resolve(values['data-dir'] ?? DEFAULT_DATA_DIR);
  const tls = certFile === undefined || keyFile === undefined ? undefined : { certFile, keyFile, caFile };
  return {
    host,
    port,
    metrics: values.metrics === undefined ? undefined : hostPortFlag('metrics', values.metrics),
    options: {
      // Each takes its option's range (OPTION_RANGES), so a flag never lets through what
      // the options refuse, nor refuses what they take.
      shards: integerFlag('shards', values.shards, ...OPTION_RANGES.shards),
      acceptors: integerFlag('acceptors', values.acceptors, ...OPTION_RANGES.acceptors),
      maxMessagesPerUser: integerFlag('max-messages', values['max-messages'], ...OPTION_RANGES.maxMessagesPerUser),
      maxLineBytes: bytesFlag('max-line', values['max-line'], ...OPTION_RANGES.maxLineBytes),
      idleTimeoutMs,
      maxInFlight: integerFlag('max-in-flight', values['max-in-flight'], ...OPTION_RANGES.maxInFlight),
      dataDir,
      fsync: values.fsync === true,
      tls,
      redis,
      ...limitOptions(values, redis !== undefined ? 'redis' : dataDir === undefined ? 'memory' : 'disk'),
    },
  };
}

// Where mailboxes are kept: the flags that choose each way and those that belong to it
// alone. A way chosen on the command line wins over another in the environment.
const REDIS_FLAGS = ['redis-wait', 'redis-wait-timeout'];
export const STORAGE_CHOICES: Alternatives = [
  { chosenBy: ['memory'], flags: ['max-store-bytes'] },
  { chosenBy: ['data-dir'], flags: ['fsync', 'min-free-disk', 'max-store-bytes'] },
  { chosenBy: ['redis'], flags: REDIS_FLAGS },
  { chosenBy: ['redis-cluster'], flags: REDIS_FLAGS },
];

export async function serve(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const parsed = parseArgs({ args, options: SERVE_FLAGS, strict: true, allowPositionals: false });
  if (parsed.values.help) {
    process.stdout.write(SERVE_HELP);
    return 0;
  }
  const { values, fromEnv, unknown, setAside } = withEnvironment(parsed.values, SERVE_FLAGS, env, STORAGE_CHOICES);
  let settings: ServeSettings;
  let logger: ReturnType<typeof createCliLogger>;
  try {
    settings = settingsFrom(values);
    logger = createCliLogger(logLevelFlag(values['log-level']), logFormatFlag(values['log-format']));
  } catch (err) {
    throw blameEnvironment(err, fromEnv);
  }
  for (const name of unknown) logger.warn({ variable: name }, `${name} is not an option of pigeonhole serve; ignored`);
  for (const name of setAside) logger.info({ variable: name }, `${name} is set aside: the command line chose where mailboxes are kept`);

  let server: PigeonholeServer;
  try {
    server = createServer({ ...settings.options, logger });
  } catch (err) {
    throw blameEnvironment(inFlagTerms(err), fromEnv);
  }

  // Signals are caught before listen(): one sent as soon as `listening on` appears, or
  // during startup, still closes gracefully instead of killing the process.
  let stop: (signal: NodeJS.Signals) => void = () => {};
  const stopped = new Promise<void>((resolve) => {
    stop = (signal) => {
      logger.info({ signal }, `${signal}: closing`);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
  });
  // SIGHUP is a reload, never the end: by default it would kill the process.
  const reload = (): void => void reloadTls(server, logger);
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  process.on('SIGHUP', reload);
  const forgetSignals = (): void => {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    process.off('SIGHUP', reload);
  };

  let address: AddressInfo;
  let metrics: MetricsEndpoint | null = null;
  try {
    // Before the server listens, so /healthz answers 503 while it starts.
    if (settings.metrics !== undefined) {
      metrics = await serveMetrics(server, settings.metrics);
      const where = showAddress(metrics.address.address, metrics.address.port);
      logger.info({ url: `http://${where}/metrics` }, `metrics on http://${where}/metrics and /healthz`);
    }
    address = await server.listen({ port: settings.port, host: settings.host });
  } catch (err) {
    forgetSignals();
    // A failed listen() keeps the shards it started (a library caller may retry); the CLI
    // won't, and their worker threads would keep the process from ever exiting.
    await Promise.all([server.close(), metrics?.close()]);
    throw err;
  }
  const shown = showAddress(address.address, address.port);
  process.stdout.write(`listening on ${shown}\n`);
  logger.info({ address: shown }, `listening on ${shown}${settings.options.tls === undefined ? '' : ' (TLS)'}`);
  reportSetup(server, settings, logger);
  warnIfExposed(address.address, settings, logger);

  await stopped;
  await server.close();
  await metrics?.close();
  process.off('SIGHUP', reload);
  logger.info({}, 'closed');
  return 0;
}

function reportSetup(server: PigeonholeServer, settings: ServeSettings, logger: Logger): void {
  const { shards, acceptors } = server.options;
  const { dataDir, fsync, redis, tls } = settings.options;
  const acceptorThreads = acceptors === 1 ? '' : `${acceptors} acceptor threads; `;
  const threads = acceptorThreads + (shards === 0 ? 'mailboxes inline in the acceptor thread' : `${shards} mailbox shard worker thread${shards === 1 ? '' : 's'}`);
  const storage =
    redis !== undefined
      ? `in Redis at ${redis.url === undefined ? `cluster ${(redis.cluster ?? []).join(',')}` : describeUrl(redis.url)}`
      : dataDir === undefined
        ? 'in memory (lost when the server stops)'
        : `in ${dataDir}${fsync ? ' (fsync on every commit)' : ''}`;
  logger.info({ shards, acceptors, dataDir, fsync }, `${threads}; mailboxes stored ${storage}`);
  if (tls !== undefined) {
    logger.info(
      { tlsCert: tls.certFile, tlsCa: tls.caFile },
      tls.caFile === undefined ? 'TLS on; no client certificates asked for' : 'TLS on; client certificates required: LOGIN must name the certificate subject CN',
    );
  }
}

// SECURITY: say so when the server is reachable from a network and anyone can be anyone.
function warnIfExposed(address: string, settings: ServeSettings, logger: Logger): void {
  const { tls } = settings.options;
  if (isLoopback(address) || tls?.caFile !== undefined) return;
  const what = tls === undefined ? 'without TLS or client certificates' : 'with TLS but without client certificates (--tls-ca)';
  const cleartext = tls === undefined ? ', and everything crosses the network in clear text' : '';
  logger.warn(
    { address, tls: tls !== undefined, clientCertificates: false },
    `listening on ${address} ${what}: anyone who can reach it may LOGIN as any user, read their mail and send in their name${cleartext}. See --tls-cert, --tls-key and --tls-ca`,
  );
}

async function reloadTls(server: PigeonholeServer, logger: Logger): Promise<void> {
  if (server.options.tls === null) {
    logger.info({ signal: 'SIGHUP' }, 'SIGHUP: nothing to reload (no TLS)');
    return;
  }
  try {
    await server.reloadTls();
    logger.info({ signal: 'SIGHUP' }, 'SIGHUP: TLS certificates reloaded; new connections use them');
  } catch (err) {
    logger.error({ signal: 'SIGHUP', code: (err as { code?: string }).code }, `SIGHUP: TLS reload failed, the certificates in use stay: ${errorMessage(err)}`);
  }
}

/** The server's `redis` option from the --redis* flags, or undefined when none is given. */
function redisFlags(values: { redis?: string; 'redis-cluster'?: string; 'redis-wait'?: string; 'redis-wait-timeout'?: string }): RedisOptions | undefined {
  const url = values.redis;
  const cluster = values['redis-cluster'];
  const waitReplicas = integerFlag('redis-wait', values['redis-wait'], ...REDIS_OPTION_RANGES.waitReplicas);
  const waitTimeoutMs = integerFlag('redis-wait-timeout', values['redis-wait-timeout'], ...REDIS_OPTION_RANGES.waitTimeoutMs);
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
