// A pigeonhole server in a process of its own, for the harness: the load generator must
// never share its event loop. Started as `node --import tsx bench/server.ts --shards N
// [--acceptors N] [--durable [--fsync] | --redis URL | --redis-cluster HOST:PORT,...]
// [--tls-cert FILE --tls-key FILE]`;
// --durable stores mailboxes in a temporary data directory that is removed when the server exits.
//
// stdout carries one JSON object per line:
//   {"event":"listening","port":N,"pid":P,...}    once listening on 127.0.0.1 (with stats)
//   {"event":"stats",...}                          in answer to a `stats` line on stdin
//   {"event":"exit",...}                           after SIGTERM/SIGINT or stdin closing
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { keepYoungGenerationSmall } from '../lib/util/young-generation.js';
import { type NamedThread, threadCpuMicros } from './proc.js';

export interface ServerStats {
  /** Resident set size now, and the process's peak (getrusage maxRSS), in bytes. */
  readonly rss: number;
  readonly peakRss: number;
  /** User + system CPU time of the whole process (every thread), microseconds. */
  readonly cpuMicros: number;
  /** The same for each acceptor and shard thread by name ('acceptor 0', 'shard 1'); Linux only. */
  readonly threadMicros: Record<string, number>;
}

function emit(event: string, body: object = {}): void {
  process.stdout.write(`${JSON.stringify({ event, ...body })}\n`);
}

const { values } = parseArgs({
  options: {
    shards: { type: 'string' },
    acceptors: { type: 'string' },
    port: { type: 'string' },
    transport: { type: 'string' },
    durable: { type: 'boolean' },
    fsync: { type: 'boolean' },
    redis: { type: 'string' },
    'redis-cluster': { type: 'string' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
  },
  strict: true,
});
// As `pigeonhole serve` runs: before the server's modules load, which would grow it.
keepYoungGenerationSmall();
const { createServer } = await import('../lib/server.js');
const shards = Number(values.shards ?? '0');
const acceptors = Number(values.acceptors ?? '1');
const dataDir = values.durable === true ? mkdtempSync(join(tmpdir(), 'pigeonhole-bench-')) : undefined;
const certFile = values['tls-cert'];
const keyFile = values['tls-key'];
const tls = certFile === undefined || keyFile === undefined ? undefined : { certFile, keyFile };
const redisCluster = values['redis-cluster']?.split(',');
const redis = values.redis !== undefined ? { url: values.redis } : redisCluster !== undefined ? { cluster: redisCluster } : undefined;
// Every load connection comes from 127.0.0.1: no per-address limit.
const shardTransport = values.transport === 'port' ? 'port' : 'ring';
const server = createServer({ shards, acceptors, dataDir, fsync: values.fsync === true, tls, shardTransport, maxConnectionsPerIp: 0, maxConnectionRatePerIp: 0, ...(redis === undefined ? {} : { redis }) });
const address = await server.listen({ host: '127.0.0.1', port: Number(values.port ?? '0') });

function stats(): ServerStats {
  const usage = process.resourceUsage();
  const threads: NamedThread[] = [
    ...server.acceptors().map(({ acceptor, tid }) => ({ name: `acceptor ${acceptor}`, tid })),
    ...server.shards().map(({ shardId, tid }) => ({ name: `shard ${shardId}`, tid })),
  ];
  return { rss: process.memoryUsage.rss(), peakRss: usage.maxRSS * 1024, cpuMicros: usage.userCPUTime + usage.systemCPUTime, threadMicros: threadCpuMicros(threads) };
}

emit('listening', { port: address.port, pid: process.pid, shards, acceptors, ...stats() });

let closing = false;
async function stop(): Promise<void> {
  if (closing) return;
  closing = true;
  await server.close();
  if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
  emit('exit', stats());
  // Lets --cpu-prof write its profile: it is written as the process exits normally.
  process.exit(0);
}

process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
const input = createInterface({ input: process.stdin });
input.on('line', (line) => {
  if (line.trim() === 'stats') emit('stats', stats());
});
// The harness died: do not outlive it.
input.on('close', () => void stop());
