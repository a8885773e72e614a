import { randomBytes } from 'node:crypto';
import type { ShardTransport } from '../lib/options.js';
import { type TestCertificates, makeTestCertificates } from '../test/helpers/certs.js';
import { type CpuProbe, type LoadResult, runLoad } from './load/generator.js';
import { type GitInfo, type MachineInfo, describeGit, describeMachine } from './machine.js';
import type { BenchOptions, BenchTarget } from './options.js';
import { RedisCluster, findRedisCli } from './redis-cluster.js';
import { RedisProcess, findRedisServer, redisVersion } from './redis.js';
import { ServerProcess, type ServerProcessOptions } from './server-process.js';

export type RowKind = 'pigeonhole' | 'redis' | 'target';

export interface BenchRow {
  readonly label: string;
  readonly kind: RowKind;
  /** Shard count of a pigeonhole row. */
  readonly shards: number | null;
  /** Acceptor threads of a pigeonhole row. */
  readonly acceptors?: number | null;
  /** The round it ran in, from 1 (see --rounds). */
  readonly round: number;
  /** Null when the row could not run; see error. */
  readonly result: LoadResult | null;
  readonly error: string | null;
  readonly serverPeakRss: number | null;
  /** The server's RSS once started, before load (a pigeonhole server run under tsx carries its loader). */
  readonly serverStartRss: number | null;
}

export interface BenchReport {
  readonly date: string;
  readonly machine: MachineInfo;
  readonly git: GitInfo;
  readonly options: BenchOptions;
  redisVersion: string | null;
  readonly rows: BenchRow[];
  /** Things a reader should know: a skipped Redis row, a generator near its limit. */
  readonly notes: string[];
}

export interface BenchHooks {
  /** Progress, one line at a time (the CLI prints it to stderr). */
  readonly log?: (line: string) => void;
}

interface Served {
  readonly host: string;
  readonly port: number;
  /** Every node of the row, when there are several; connections are spread over them. */
  readonly ports?: readonly number[];
  readonly probe: CpuProbe | undefined;
  readonly startRss: number | null;
  /** The CA the generator must trust: the server speaks TLS. */
  readonly tlsCa?: Buffer;
  stop(): Promise<{ peakRss: number | null }>;
  kill(): void;
}

/** A row to run: what it is, and how to start its server. */
interface RowPlan {
  readonly label: string;
  readonly kind: RowKind;
  readonly shards: number | null;
  readonly acceptors?: number;
  readonly start: () => Promise<Served>;
}

/**
 * Runs every configuration the options ask for, one after another, and returns all
 * figures. With several rounds, every configuration runs once per round, Redis's too,
 * so that the rows compared within a round ran minutes apart at most.
 */
export async function runBenchmark(options: BenchOptions, hooks: BenchHooks = {}): Promise<BenchReport> {
  const log = hooks.log ?? (() => {});
  const report: BenchReport & { redisVersion: string | null } = {
    date: new Date().toISOString(),
    machine: describeMachine(),
    git: describeGit(),
    options,
    redisVersion: null,
    rows: [],
    notes: [],
  };

  const plans: RowPlan[] = [];
  if (options.target !== null) {
    const target: BenchTarget = options.target;
    plans.push({ label: `target ${target.host}:${target.port}`, kind: 'target', shards: null, start: async () => ({ ...target, probe: undefined, startRss: null, stop: async () => ({ peakRss: null }), kill: () => {} }) });
  }
  // One certificate for the run's TLS servers, made with openssl in a temporary folder.
  const certs: TestCertificates | null = options.tls && options.shards.length > 0 ? makeTestCertificates() : null;
  try {
    for (const acceptors of options.acceptors) {
      for (const shards of options.shards) {
        // Several acceptors route to worker shards only.
        if (acceptors > 1 && shards === 0) continue;
        // Inline shards have no transport; worker shards get a row per transport asked for.
        for (const transport of shards === 0 ? (['ring'] as const) : options.transports) {
          for (const nodes of options.nodes) {
            const label = `${options.acceptorsAsked ? `acceptors=${acceptors} ` : ''}shards=${shards}${shards > 0 && transport === 'port' ? ' port' : ''}${nodes > 1 ? ` nodes=${nodes}` : ''}${storeLabel(options)}${certs === null ? '' : ' tls'}`;
            plans.push({ label, kind: 'pigeonhole', shards, acceptors, start: () => startPigeonhole(options, { shards, acceptors, nodes, transport, certs }) });
          }
        }
      }
    }
    if (options.redis) {
      const binary = findRedisServer();
      if (binary === null) {
        report.notes.push('redis-server is not on PATH: the Redis row was skipped (apt-get install redis-server brings it).');
      } else {
        const version = redisVersion(binary);
        report.redisVersion = version;
        for (const ioThreads of options.redisIoThreads) {
          const label = `redis ${version ?? ''}`.trim() + (options.redisIoThreads.length > 1 || ioThreads > 1 ? ` io-threads=${ioThreads}` : '');
          plans.push({
            label,
            kind: 'redis',
            shards: null,
            start: async () => {
              const redis = await RedisProcess.start(binary, { ioThreads, ...(options.serverCpus === null ? {} : { cpus: options.serverCpus }) });
              return { host: '127.0.0.1', port: redis.port, probe: redis, startRss: redis.startRss, stop: () => redis.stop(), kill: () => redis.kill() };
            },
          });
        }
      }
    }
    for (let round = 1; round <= options.rounds; round++) {
      const prefix = options.rounds > 1 ? `round ${round}/${options.rounds}: ` : '';
      for (const plan of plans) {
        const row = await runRow(options, plan.kind, plan.label, plan.shards, plan.start, (line) => log(prefix + line));
        report.rows.push({ ...row, round, ...(plan.acceptors === undefined ? {} : { acceptors: plan.acceptors }) });
      }
    }
  } finally {
    certs?.remove();
  }
  const noted = new Set<string>();
  for (const row of report.rows) {
    const cpu = row.result?.generatorCpuPercent;
    if (cpu !== undefined && cpu > 90 * options.threads && !noted.has(row.label)) {
      noted.add(row.label);
      report.notes.push(`${row.label}: the generator used ${Math.round(cpu)}% CPU with ${options.threads} thread(s)${options.rounds > 1 ? ` in round ${row.round}` : ''}: it may have been the bottleneck (try --threads).`);
    }
  }
  return report;
}

function storeLabel(options: BenchOptions): string {
  if (options.store !== 'local') return ` ${options.store}`;
  return options.durable ? (options.fsync ? ' fsync' : ' durable') : '';
}

/**
 * One pigeonhole row's servers: `nodes` server processes, over a redis-server or a
 * 3-master Redis Cluster started for the row when the store is Redis (no persistence,
 * as the Redis row). Their CPU and peak RSS are the nodes' sums; Redis's are not in them.
 */
interface PigeonholeRow {
  readonly shards: number;
  readonly acceptors: number;
  readonly nodes: number;
  readonly transport: ShardTransport;
  readonly certs: TestCertificates | null;
}

async function startPigeonhole(options: BenchOptions, { shards, acceptors, nodes, transport, certs }: PigeonholeRow): Promise<Served> {
  const common = {
    shards,
    acceptors,
    transport,
    ...(options.serverCpus === null ? {} : { cpus: options.serverCpus }),
    durable: options.durable,
    fsync: options.fsync,
    ...(certs === null ? {} : { tls: { certFile: certs.server.certFile, keyFile: certs.server.keyFile } }),
    ...(options.cpuProfDir === null ? {} : { cpuProfDir: options.cpuProfDir }),
  };
  let store: { stop(): Promise<unknown>; kill(): void } | null = null;
  let redis: ServerProcessOptions['redis'];
  if (options.store !== 'local') {
    const binary = findRedisServer();
    const cli = binary === null ? null : findRedisCli(binary);
    if (binary === null || cli === null) throw new Error('--store redis needs redis-server and redis-cli on PATH (apt-get install redis-server)');
    if (options.store === 'redis') {
      const server = await RedisProcess.start(binary);
      store = server;
      redis = { url: `redis://${server.address}` };
    } else {
      const cluster = await RedisCluster.start(binary, cli, 3);
      store = cluster;
      redis = { cluster: cluster.addresses };
    }
  }
  const servers: ServerProcess[] = [];
  try {
    for (let i = 0; i < nodes; i++) servers.push(await ServerProcess.start({ ...common, ...(redis === undefined ? {} : { redis }) }));
  } catch (err) {
    for (const server of servers) server.kill();
    store?.kill();
    throw err;
  }
  const sum = (values: (number | null)[]): number | null => (values.some((value) => value === null) ? null : values.reduce<number>((total, value) => total + (value as number), 0));
  const first = servers[0] as ServerProcess;
  return {
    host: '127.0.0.1',
    port: first.port,
    ports: servers.map((server) => server.port),
    probe: {
      cpuMicros: async () => sum(await Promise.all(servers.map((server) => server.cpuMicros()))),
      // Several nodes: each thread name's CPU summed over the nodes.
      sample: async () => {
        const samples = await Promise.all(servers.map((server) => server.sample()));
        const threads: Record<string, number> = {};
        for (const sample of samples) for (const [name, micros] of Object.entries(sample.threads)) threads[name] = (threads[name] ?? 0) + micros;
        return { total: sum(samples.map((sample) => sample.total)), threads };
      },
    },
    startRss: sum(servers.map((server) => server.startRss)),
    ...(certs === null ? {} : { tlsCa: certs.ca }),
    stop: async () => {
      const stopped = await Promise.all(servers.map((server) => server.stop()));
      await store?.stop();
      return { peakRss: sum(stopped.map((result) => result.peakRss)) };
    },
    kill: () => {
      for (const server of servers) server.kill();
      store?.kill();
    },
  };
}

async function runRow(options: BenchOptions, kind: RowKind, label: string, shards: number | null, start: () => Promise<Served>, log: (line: string) => void): Promise<Omit<BenchRow, 'round'>> {
  let served: Served | null = null;
  try {
    log(`${label}: starting`);
    served = await start();
    log(`${label}: warming up ${options.warmupSeconds} s, then measuring ${options.durationSeconds} s`);
    const result = await runLoad({
      dialect: kind === 'redis' ? 'redis' : 'pigeonhole',
      host: served.host,
      port: served.port,
      ...(served.ports === undefined ? {} : { ports: served.ports }),
      connections: options.connections,
      pipeline: options.pipeline,
      users: options.users,
      composeShare: options.mix.compose / (options.mix.compose + options.mix.read),
      toReaders: options.toReaders,
      messageBytes: options.messageBytes,
      // New names every row: a target server or a reused Redis never mixes in old messages.
      prefix: `bench-${randomBytes(3).toString('hex')}-`,
      tlsCa: served.tlsCa ?? null,
      threads: options.threads,
      warmupMs: options.warmupSeconds * 1000,
      durationMs: options.durationSeconds * 1000,
      ...(served.probe === undefined ? {} : { serverCpu: served.probe }),
      log: (line) => log(`${label}: ${line}`),
    });
    const server = served;
    served = null;
    const { peakRss } = await server.stop();
    log(`${label}: ${Math.round(result.opsPerSecond).toLocaleString('en-US')} ops/s, ${result.errors.total} error(s)`);
    return { label, kind, shards, result, error: null, serverPeakRss: peakRss, serverStartRss: server.startRss };
  } catch (err) {
    served?.kill();
    const message = err instanceof Error ? err.message : String(err);
    log(`${label}: failed: ${message}`);
    return { label, kind, shards, result: null, error: message, serverPeakRss: null, serverStartRss: null };
  }
}

/** True when every row ran and found nothing wrong. */
export function reportOk(report: BenchReport): boolean {
  return report.rows.every((row) => row.result?.ok === true);
}
