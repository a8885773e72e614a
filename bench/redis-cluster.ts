import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { RedisProcess, type RedisProcessOptions } from './redis.js';

const run = promisify(execFile);
const CLUSTER_READY_TIMEOUT_MS = 20_000;

/** redis-cli beside redis-server (both come in Debian's redis-server package), or null. */
export function findRedisCli(redisServer: string): string | null {
  const candidate = join(dirname(redisServer), 'redis-cli');
  try {
    accessSync(candidate, constants.X_OK);
    return candidate;
  } catch {
    return null;
  }
}

/**
 * A throwaway Redis Cluster of `masters` redis-server processes on free loopback ports,
 * no replicas, joined with `redis-cli --cluster create ... --cluster-yes` (which spreads
 * the 16384 slots evenly), ready once every node reports `cluster_state:ok`.
 */
export class RedisCluster {
  readonly nodes: readonly RedisProcess[];
  readonly #cli: string;

  private constructor(nodes: RedisProcess[], cli: string) {
    this.nodes = nodes;
    this.#cli = cli;
  }

  /** HOST:PORT of every node, as `--redis-cluster` takes them. */
  get addresses(): string[] {
    return this.nodes.map((node) => node.address);
  }

  static async start(binary: string, cli: string, masters = 3, options: Omit<RedisProcessOptions, 'cluster'> = {}): Promise<RedisCluster> {
    const nodes: RedisProcess[] = [];
    try {
      for (let i = 0; i < masters; i++) nodes.push(await RedisProcess.start(binary, { ...options, cluster: true }));
      const cluster = new RedisCluster(nodes, cli);
      await run(cli, ['--cluster', 'create', ...cluster.addresses, '--cluster-yes'], { timeout: CLUSTER_READY_TIMEOUT_MS });
      await cluster.waitUntilReady();
      return cluster;
    } catch (err) {
      await Promise.all(nodes.map((node) => node.stop()));
      throw err;
    }
  }

  /** Resolves once every node says the cluster is ok (all slots served); rejects after a while. */
  async waitUntilReady(): Promise<void> {
    const deadline = Date.now() + CLUSTER_READY_TIMEOUT_MS;
    for (;;) {
      const states = await Promise.all(this.nodes.map((node) => this.#state(node)));
      if (states.every((state) => state === 'ok')) return;
      if (Date.now() > deadline) throw new Error(`the Redis cluster did not become ready: ${states.join(', ')}`);
      await sleep(100);
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.stop()));
  }

  kill(): void {
    for (const node of this.nodes) node.kill();
  }

  async #state(node: RedisProcess): Promise<string> {
    try {
      const { stdout } = await run(this.#cli, ['-p', String(node.port), 'cluster', 'info'], { timeout: 5_000 });
      return /cluster_state:(\w+)/.exec(stdout)?.[1] ?? 'unknown';
    } catch {
      return 'unreachable';
    }
  }
}
