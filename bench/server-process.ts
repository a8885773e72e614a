import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ShardTransport } from '../lib/options.js';
import type { ServerStats } from './server.js';

const SERVER_FILE = fileURLToPath(new URL('./server.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 20_000;

export interface ServerProcessOptions {
  readonly shards: number;
  /** Acceptor threads (default 1). */
  readonly acceptors?: number;
  /** Run on these CPUs only (taskset -c, Linux). */
  readonly cpus?: string;
  readonly transport?: ShardTransport;
  /** Write V8 CPU profiles of the server (every thread) into this directory. */
  readonly cpuProfDir?: string;
  /** Keep mailboxes on disk, in a temporary data directory removed when the server exits. */
  readonly durable?: boolean;
  readonly fsync?: boolean;
  /** Serve over TLS with this certificate and key (files). */
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
  /** Keep mailboxes in this Redis (a URL) or Redis Cluster (seed addresses). */
  readonly redis?: { readonly url: string } | { readonly cluster: readonly string[] };
}

/** The server's CPU time at one instant: the whole process, and by thread. */
export interface CpuSample {
  readonly total: number | null;
  readonly threads: Record<string, number>;
}

interface ServerEvent extends Partial<ServerStats> {
  event: string;
  port?: number;
}

/** A pigeonhole server in its own process (bench/server.ts). */
export class ServerProcess {
  readonly port: number;
  readonly pid: number;
  /** RSS once listening, before any load: the baseline the peak is compared with. */
  readonly startRss: number | null;
  readonly #child: ChildProcess;
  readonly #events: EventQueue;
  readonly #exited: Promise<void>;

  private constructor(child: ChildProcess, port: number, startRss: number | null, events: EventQueue, exited: Promise<void>) {
    this.#child = child;
    this.port = port;
    this.startRss = startRss;
    this.pid = child.pid ?? -1;
    this.#events = events;
    this.#exited = exited;
  }

  static async start(options: ServerProcessOptions): Promise<ServerProcess> {
    const nodeArgs = ['--import', import.meta.resolve('tsx')];
    if (options.cpuProfDir !== undefined) nodeArgs.push('--cpu-prof', '--cpu-prof-dir', options.cpuProfDir);
    const serverArgs = ['--shards', String(options.shards), '--acceptors', String(options.acceptors ?? 1), '--transport', options.transport ?? 'ring'];
    if (options.durable === true) serverArgs.push('--durable');
    if (options.fsync === true) serverArgs.push('--fsync');
    if (options.tls !== undefined) serverArgs.push('--tls-cert', options.tls.certFile, '--tls-key', options.tls.keyFile);
    if (options.redis !== undefined) serverArgs.push(...('url' in options.redis ? ['--redis', options.redis.url] : ['--redis-cluster', options.redis.cluster.join(',')]));
    const command = [process.execPath, ...nodeArgs, SERVER_FILE, ...serverArgs];
    // Pinned with taskset, so that the generator's threads keep their own cores.
    if (options.cpus !== undefined) command.unshift('taskset', '-c', options.cpus);
    const child = spawn(command[0] as string, command.slice(1), {
      cwd: REPO_ROOT,
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const events = new EventQueue();
    const exited = once(child, 'exit').then(() => events.end());
    createInterface({ input: child.stdout as NonNullable<typeof child.stdout> }).on('line', (line) => {
      let event: ServerEvent;
      try {
        event = JSON.parse(line) as ServerEvent;
      } catch {
        process.stderr.write(`bench server: ${line}\n`);
        return;
      }
      events.deliver(event);
    });
    let first: ServerEvent;
    try {
      first = await withTimeout(events.next(), START_TIMEOUT_MS, `the server did not start within ${START_TIMEOUT_MS} ms`);
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
    if (first.event !== 'listening' || typeof first.port !== 'number') {
      child.kill('SIGKILL');
      throw new Error(`the server did not start (${first.event})`);
    }
    return new ServerProcess(child, first.port, typeof first.rss === 'number' ? first.rss : null, events, exited);
  }

  /** The server's CPU time so far (all its threads). */
  async cpuMicros(): Promise<number | null> {
    return (await this.sample()).total;
  }

  /** The server's CPU time so far, in all and by thread ('acceptor 0', 'shard 1'). */
  async sample(): Promise<CpuSample> {
    const event = await this.#request();
    return { total: typeof event.cpuMicros === 'number' ? event.cpuMicros : null, threads: event.threadMicros ?? {} };
  }

  /** Closes the server gracefully; resolves with its peak RSS in bytes. */
  async stop(): Promise<{ peakRss: number | null }> {
    const last = this.#events.next();
    this.#child.kill('SIGTERM');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    try {
      const event = await last;
      await this.#exited;
      return { peakRss: typeof event.peakRss === 'number' ? event.peakRss : null };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Kills it without ceremony (after a failure). */
  kill(): void {
    this.#child.kill('SIGKILL');
  }

  #request(): Promise<ServerEvent> {
    const answer = this.#events.next();
    this.#child.stdin?.write('stats\n');
    return answer;
  }
}

/** The child's events in order, each to the next waiter; once it exits, every wait hears 'gone'. */
class EventQueue {
  readonly #waiting: ((event: ServerEvent) => void)[] = [];
  #ended = false;

  next(): Promise<ServerEvent> {
    if (this.#ended) return Promise.resolve({ event: 'gone' });
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  deliver(event: ServerEvent): void {
    this.#waiting.shift()?.(event);
  }

  end(): void {
    this.#ended = true;
    for (const waiter of this.#waiting.splice(0)) waiter({ event: 'gone' });
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
