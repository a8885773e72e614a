import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { UsageError, integerFlag as integer } from '../lib/cli/flags.js';
import { MAX_ACCEPTORS, MAX_SHARDS, type ShardTransport } from '../lib/options.js';

export interface BenchTarget {
  readonly host: string;
  readonly port: number;
}

export interface BenchOptions {
  readonly connections: number;
  readonly pipeline: number;
  readonly durationSeconds: number;
  readonly warmupSeconds: number;
  /** COMPOSE:READ weights. */
  readonly mix: { readonly compose: number; readonly read: number };
  readonly users: number;
  readonly toReaders: number;
  readonly messageBytes: number;
  /** Server configurations to start, in order; empty with --target or --shards none. */
  readonly shards: readonly number[];
  /** Acceptor threads per pigeonhole server: each shard count runs once per entry (those above 1 skip shards 0). */
  readonly acceptors: readonly number[];
  /** Label rows with their acceptor count (it was asked for). */
  readonly acceptorsAsked: boolean;
  /** Run server processes on these CPUs only (Linux, taskset), e.g. '0-11'; null: anywhere. */
  readonly serverCpus: string | null;
  /** The Redis row, once per io-threads value (Redis's own I/O threads; 1 is off). */
  readonly redisIoThreads: readonly number[];
  readonly target: BenchTarget | null;
  readonly redis: boolean;
  readonly json: string | null;
  readonly threads: number;
  readonly cpuProfDir: string | null;
  /** Servers keep mailboxes on disk (a fresh temporary data directory each), fsync'd or not. */
  readonly durable: boolean;
  readonly fsync: boolean;
  /** pigeonhole servers serve over TLS (a certificate made for the run) and the generator connects over TLS. */
  readonly tls: boolean;
  /**
   * Where pigeonhole rows keep mailboxes: in the server ('local': memory, or SQLite with
   * --durable), or in a redis-server / 3-master Redis Cluster the harness starts per row.
   */
  readonly store: BenchStore;
  /** pigeonhole nodes per row, sharing the Redis store, the connections split across them. */
  readonly nodes: readonly number[];
  /** How worker shards get their batches, one row per transport for each shard count above 0. */
  readonly transports: readonly ShardTransport[];
  /** Draw the run into this SVG file. */
  readonly chart: string | null;
  /** Every configuration runs this many times, round after round (Redis's too). */
  readonly rounds: number;
}

export type BenchStore = 'local' | 'redis' | 'redis-cluster';

// Half the cores: the server needs the rest. On 2 cores that is 1 generator thread, which
// does a reply in a fraction of the server's time per reply (its CPU is reported; see README).
export function defaultThreads(): number {
  return Math.max(1, Math.floor(availableParallelism() / 2));
}

export const DEFAULTS = {
  connections: 50,
  pipeline: 1,
  durationSeconds: 10,
  warmupSeconds: 2,
  mix: { compose: 1, read: 1 },
  users: 1000,
  toReaders: 0.75,
  messageBytes: 64,
  shards: [0, 2],
  acceptors: [1],
  nodes: [1],
  redisIoThreads: [1],
  rounds: 1,
} as const;

// The server's default maxInFlight: deeper pipelines would only wait on its backpressure.
const MAX_PIPELINE = 1024;
// Enough for a median that one disturbed round does not move; a run stays bounded.
const MAX_ROUNDS = 50;
// The server's default line limit, less room for nothing else: a body is one line.
const MAX_MESSAGE_BYTES = 65_536;

export const HELP = `Usage: npm run bench -- [options]
       npm run bench:redis -- [options]     (adds a Redis row: --redis)

Starts each pigeonhole configuration in its own process, floods it with COMPOSE and READ
from worker threads, checks every reply, drains every mailbox at the end, and prints one
table side by side.

Load:
  --connections N       client connections, each logged in as its own user (default ${DEFAULTS.connections})
  --pipeline N          commands outstanding per connection; 1 waits for each reply (default ${DEFAULTS.pipeline})
  --duration S          measured seconds, after the warm-up (default ${DEFAULTS.durationSeconds})
  --warmup S            seconds of load before measuring (default ${DEFAULTS.warmupSeconds})
  --mix C:R             COMPOSE:READ weights (default ${DEFAULTS.mix.compose}:${DEFAULTS.mix.read})
  --users N             recipients besides the connections' own users (default ${DEFAULTS.users})
  --to-readers F        share of COMPOSEs sent to a connection's user, who READs; the rest
                        go to the --users set, emptied only by the final drain (default ${DEFAULTS.toReaders})
  --message-bytes N     message size; bodies carry an id and are padded to this (default ${DEFAULTS.messageBytes})
  --threads N           generator worker threads (default ${defaultThreads()} here: half the cores)
  --rounds N            run every row N times, round after round (the Redis row in each
                        round too), and end with each row's median and range over the
                        rounds; ratios are taken within each round (default ${DEFAULTS.rounds})

Servers:
  --shards LIST         pigeonhole configurations, comma-separated shard counts; 0 is inline
                        (default ${DEFAULTS.shards.join(',')}); 'none' runs no pigeonhole server
  --acceptors LIST      acceptor threads per server, e.g. 1,2: a row for each with each shard
                        count (above 1 with worker shards only) (default ${DEFAULTS.acceptors.join(',')})
  --server-cpus LIST    run the server processes on these CPUs only (taskset -c LIST, Linux),
                        e.g. 0-11, so that the generator's threads have cores of their own
  --target HOST:PORT    drive a server that is already running instead (one row)
  --redis               add a row for redis-server (if on PATH) driven with RPUSH/LPOP
  --redis-io-threads LIST
                        with --redis: a Redis row for each io-threads value, e.g. 1,4 (1: no
                        I/O threads, Redis's default) (default ${DEFAULTS.redisIoThreads.join(',')})
  --cpu-prof DIR        run each pigeonhole server with --cpu-prof, profiles into DIR
  --durable             pigeonhole servers keep mailboxes on disk (SQLite, a fresh temporary
                        data directory each) instead of in memory
  --fsync               with --durable: sync every commit to disk (survives power loss)
  --tls                 pigeonhole servers serve over TLS (TLS 1.3, a certificate made with
                        openssl for the run, no client certificates) and every connection
                        is TLS; the Redis row stays plain
  --store redis         pigeonhole servers keep mailboxes in a redis-server started for the row
  --store redis-cluster ... in a 3-master Redis Cluster started for the row
  --nodes LIST          with --store redis or redis-cluster: pigeonhole nodes per row, e.g. 1,2;
                        connection i goes to node i mod N (default 1)
  --transport LIST      how worker shards get their batches: ring, port or ring,port (a row
                        for each) (default ring)

Output:
  --json FILE           also write every figure, with the machine's description, to FILE
  --chart FILE.svg      also draw throughput and latency percentiles into an SVG file
  -h, --help            show this help

Exits 1 when any row found an error (a wrong or missing reply, a lost or duplicated message).
`;

export function parseBenchArgs(args: readonly string[]): BenchOptions | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      options: {
        connections: { type: 'string' },
        pipeline: { type: 'string' },
        duration: { type: 'string' },
        warmup: { type: 'string' },
        mix: { type: 'string' },
        users: { type: 'string' },
        'to-readers': { type: 'string' },
        'message-bytes': { type: 'string' },
        shards: { type: 'string' },
        acceptors: { type: 'string' },
        'server-cpus': { type: 'string' },
        'redis-io-threads': { type: 'string' },
        target: { type: 'string' },
        redis: { type: 'boolean' },
        json: { type: 'string' },
        threads: { type: 'string' },
        'cpu-prof': { type: 'string' },
        durable: { type: 'boolean' },
        fsync: { type: 'boolean' },
        tls: { type: 'boolean' },
        store: { type: 'string' },
        nodes: { type: 'string' },
        transport: { type: 'string' },
        chart: { type: 'string' },
        rounds: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const { values } = parsed;
  if (values.help === true) return 'help';
  const target = values.target === undefined ? null : parseTarget(values.target);
  if (target !== null && values.shards !== undefined) throw new UsageError('--target drives one running server: leave out --shards');
  if (values.fsync === true && values.durable !== true) throw new UsageError('--fsync applies to --durable servers');
  if (values.tls === true && target !== null) throw new UsageError('--tls starts its own servers with a certificate made for the run: leave out --target');
  const store = parseStore(values.store);
  if (store !== 'local' && values.durable === true) throw new UsageError('--durable keeps mailboxes in SQLite: leave out --store');
  const nodes = values.nodes === undefined ? DEFAULTS.nodes : parseCounts('nodes', values.nodes, 16);
  if (store === 'local' && nodes.some((n) => n > 1)) throw new UsageError('--nodes above 1 needs a shared store: --store redis or redis-cluster');
  if (target !== null && values.nodes !== undefined) throw new UsageError('--target drives one running server: leave out --nodes');
  if (target !== null && values.acceptors !== undefined) throw new UsageError('--target drives one running server: leave out --acceptors');
  const serverCpus = values['server-cpus'] ?? null;
  if (serverCpus !== null && !/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(serverCpus)) throw new UsageError(`--server-cpus must list CPUs as taskset takes them, such as 0-11 or 0,2,4, got '${serverCpus}'`);
  return {
    connections: integer('connections', values.connections, 1, 10_000) ?? DEFAULTS.connections,
    pipeline: integer('pipeline', values.pipeline, 1, MAX_PIPELINE) ?? DEFAULTS.pipeline,
    durationSeconds: seconds('duration', values.duration, false) ?? DEFAULTS.durationSeconds,
    warmupSeconds: seconds('warmup', values.warmup, true) ?? DEFAULTS.warmupSeconds,
    mix: values.mix === undefined ? DEFAULTS.mix : parseMix(values.mix),
    users: integer('users', values.users, 0, 10_000_000) ?? DEFAULTS.users,
    toReaders: share('to-readers', values['to-readers']) ?? DEFAULTS.toReaders,
    messageBytes: integer('message-bytes', values['message-bytes'], 1, MAX_MESSAGE_BYTES) ?? DEFAULTS.messageBytes,
    shards: target !== null ? [] : values.shards === undefined ? DEFAULTS.shards : parseShards(values.shards),
    acceptors: values.acceptors === undefined ? DEFAULTS.acceptors : parseCounts('acceptors', values.acceptors, MAX_ACCEPTORS),
    acceptorsAsked: values.acceptors !== undefined,
    serverCpus,
    redisIoThreads: values['redis-io-threads'] === undefined ? DEFAULTS.redisIoThreads : parseCounts('redis-io-threads', values['redis-io-threads'], 128),
    target,
    redis: values.redis === true,
    json: values.json ?? null,
    threads: integer('threads', values.threads, 1, 64) ?? defaultThreads(),
    cpuProfDir: values['cpu-prof'] ?? null,
    durable: values.durable === true,
    fsync: values.fsync === true,
    tls: values.tls === true,
    store,
    nodes,
    transports: values.transport === undefined ? ['ring'] : parseTransports(values.transport),
    chart: values.chart ?? null,
    rounds: integer('rounds', values.rounds, 1, MAX_ROUNDS) ?? DEFAULTS.rounds,
  };
}

function parseStore(value: string | undefined): BenchStore {
  if (value === undefined || value === 'memory') return 'local';
  if (value === 'redis' || value === 'redis-cluster') return value;
  throw new UsageError(`--store must be memory, redis or redis-cluster, got '${value}'`);
}

function parseCounts(flag: string, value: string, max: number): number[] {
  return value.split(',').map((part) => {
    if (!/^\d+$/.test(part.trim()) || Number(part) < 1 || Number(part) > max) throw new UsageError(`--${flag} must list counts from 1 to ${max} such as 1,2, got '${value}'`);
    return Number(part);
  });
}

function seconds(flag: string, value: string | undefined, zeroAllowed: boolean): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || (!zeroAllowed && n === 0) || n > 3600) {
    throw new UsageError(`--${flag} must be a number of seconds ${zeroAllowed ? 'from 0' : 'above 0'} to 3600, got '${value}'`);
  }
  return n;
}

function share(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) throw new UsageError(`--${flag} must be a number from 0 to 1, got '${value}'`);
  return n;
}

function parseMix(value: string): { compose: number; read: number } {
  const match = /^(\d+(?:\.\d+)?):(\d+(?:\.\d+)?)$/.exec(value);
  const compose = Number(match?.[1]);
  const read = Number(match?.[2]);
  if (match === null || compose + read === 0) throw new UsageError(`--mix must be COMPOSE:READ weights such as 1:1 or 3:1, got '${value}'`);
  return { compose, read };
}

function parseShards(value: string): number[] {
  if (value === 'none') return [];
  const list = value.split(',').map((part) => part.trim());
  return list.map((part) => {
    if (!/^\d+$/.test(part) || Number(part) > MAX_SHARDS) throw new UsageError(`--shards must list shard counts from 0 to ${MAX_SHARDS} such as 0,1,2,4 (or 'none'), got '${value}'`);
    return Number(part);
  });
}

function parseTransports(value: string): ShardTransport[] {
  const list = value.split(',').map((part) => part.trim());
  if (list.length === 0 || list.some((part) => part !== 'ring' && part !== 'port')) throw new UsageError(`--transport must list ring and/or port, got '${value}'`);
  return [...new Set(list)] as ShardTransport[];
}

function parseTarget(value: string): BenchTarget {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(value);
  const port = Number(match?.[3]);
  if (match === null || port < 1 || port > 65_535) throw new UsageError(`--target must be HOST:PORT such as 127.0.0.1:4000, got '${value}'`);
  return { host: (match[1] ?? match[2]) as string, port };
}
