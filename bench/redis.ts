import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { procCpuMicros, procRss } from './proc.js';

const READY_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 10_000;

/** The redis-server executable on PATH, or null. */
export function findRedisServer(): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, 'redis-server');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

export function redisVersion(binary: string): string | null {
  try {
    const out = execFileSync(binary, ['--version'], { encoding: 'utf8', timeout: 5_000 });
    return /v=(\S+)/.exec(out)?.[1] ?? out.trim();
  } catch {
    return null;
  }
}

export interface RedisProcessOptions {
  /**
   * Keep data across a crash: an append-only file synced before every reply
   * (`appendonly yes`, `appendfsync always`). Default: no persistence at all.
   */
  readonly persist?: boolean;
  /** Start as a cluster node (`cluster-enabled yes`), for RedisCluster to join. */
  readonly cluster?: boolean;
  /** Where redis-server's own log goes: 'inherit' (stderr, warnings only) or 'ignore'. */
  readonly log?: 'inherit' | 'ignore';
  /** Redis's I/O threads (`io-threads`, with `io-threads-do-reads yes`); 1 (the default) is none. */
  readonly ioThreads?: number;
  /** Run on these CPUs only (taskset -c, Linux). */
  readonly cpus?: string;
}

/**
 * A throwaway redis-server on a free loopback port, in its own temporary directory,
 * removed at stop. By default it keeps nothing (`--save ''`, `--appendonly no`); tests of
 * faults ask for `persist` and use crash() and restart(), which keep port and directory.
 */
export class RedisProcess {
  readonly port: number;
  readonly dir: string;
  readonly #binary: string;
  readonly #args: readonly string[];
  readonly #log: 'inherit' | 'ignore';
  readonly #cpus: string | undefined;
  #child: ChildProcess;
  #exited: Promise<unknown>;
  #startRss: number | null;

  private constructor(binary: string, args: readonly string[], log: 'inherit' | 'ignore', cpus: string | undefined, port: number, dir: string, child: ChildProcess, exited: Promise<unknown>) {
    this.#binary = binary;
    this.#cpus = cpus;
    this.#args = args;
    this.#log = log;
    this.port = port;
    this.dir = dir;
    this.#child = child;
    this.#exited = exited;
    this.#startRss = procRss(this.pid, 'VmRSS');
  }

  get pid(): number {
    return this.#child.pid ?? -1;
  }

  get startRss(): number | null {
    return this.#startRss;
  }

  /** 127.0.0.1:PORT, as `--redis-cluster` and redis-cli take it. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  static async start(binary: string, options: RedisProcessOptions = {}): Promise<RedisProcess> {
    const dir = await mkdtemp(join(tmpdir(), 'pigeonhole-redis-'));
    const args = [
      '--bind', '127.0.0.1', '--save', '', '--dir', dir, '--daemonize', 'no', '--loglevel', 'warning',
      ...(options.persist === true ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']),
      // A short node timeout: a test that stops a node sees the cluster notice it soon.
      ...(options.cluster === true ? ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000'] : []),
      ...(options.ioThreads !== undefined && options.ioThreads > 1 ? ['--io-threads', String(options.ioThreads), '--io-threads-do-reads', 'yes'] : []),
    ];
    const log = options.log ?? 'inherit';
    // The port is free when asked; another process could take it before Redis binds, so retry.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const started = await spawnRedis(binary, port, args, log, options.cpus);
      if (started !== null) return new RedisProcess(binary, args, log, options.cpus, port, dir, started.child, started.exited);
      if (attempt >= 3) {
        await rm(dir, { recursive: true, force: true });
        throw new Error('redis-server did not start');
      }
    }
  }

  /** CPU time used so far, from /proc (Linux); null elsewhere. */
  async cpuMicros(): Promise<number | null> {
    return procCpuMicros(this.pid);
  }

  /** Kills it with SIGKILL, as a crash would, keeping its directory for restart(). */
  async crash(): Promise<void> {
    this.#child.kill('SIGKILL');
    await this.#exited;
  }

  /** Starts it again on the same port and directory (after crash()); resolves once it answers. */
  async restart(): Promise<void> {
    for (let attempt = 1; attempt <= 20; attempt++) {
      const started = await spawnRedis(this.#binary, this.port, this.#args, this.#log, this.#cpus);
      if (started !== null) {
        this.#child = started.child;
        this.#exited = started.exited;
        this.#startRss = procRss(this.pid, 'VmRSS');
        return;
      }
      // The port may not be free again yet.
      await sleep(100);
    }
    throw new Error(`redis-server did not start again on port ${this.port}`);
  }

  async stop(): Promise<{ peakRss: number | null }> {
    const peakRss = procRss(this.pid, 'VmHWM');
    this.#child.kill('SIGTERM');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    try {
      await this.#exited;
    } finally {
      clearTimeout(timer);
      await rm(this.dir, { recursive: true, force: true });
    }
    return { peakRss };
  }

  kill(): void {
    this.#child.kill('SIGKILL');
    void rm(this.dir, { recursive: true, force: true });
  }
}

/** Spawns redis-server on `port`; the child once it answers PING, or null if it exited first. */
async function spawnRedis(binary: string, port: number, args: readonly string[], log: 'inherit' | 'ignore', cpus?: string): Promise<{ child: ChildProcess; exited: Promise<unknown> } | null> {
  // taskset execs redis-server: the child's pid is Redis's own, for /proc.
  const command = cpus === undefined ? [binary] : ['taskset', '-c', cpus, binary];
  const child = spawn(command[0] as string, [...command.slice(1), '--port', String(port), ...args], { stdio: ['ignore', 'ignore', log] });
  const exited = once(child, 'exit');
  exited.catch(() => {});
  const ready = await Promise.race([waitForPong(port), exited.then(() => false)]);
  if (ready) return { child, exited };
  child.kill('SIGKILL');
  await exited;
  return null;
}

/** A port nobody listens on now, on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The text of `INFO <section>` from the Redis on `port`. */
export function redisInfo(port: number, section: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let answer = '';
    socket.setEncoding('latin1');
    socket.on('error', reject);
    socket.on('data', (chunk: string) => {
      answer += chunk;
      // A bulk string: $<length>\r\n<text>\r\n.
      const header = /^\$(\d+)\r\n/.exec(answer);
      if (header !== null && answer.length >= header[0].length + Number(header[1]) + 2) {
        socket.destroy();
        resolve(answer.slice(header[0].length, header[0].length + Number(header[1])));
      }
    });
    socket.write(`INFO ${section}\r\n`);
  });
}

async function waitForPong(port: number): Promise<boolean> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (await ping(port)) return true;
    await sleep(50);
  }
  return false;
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let answer = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      answer += chunk.toString('latin1');
      if (answer.includes('\r\n')) done(answer.startsWith('+PONG'));
    });
    socket.on('error', () => done(false));
  });
}
