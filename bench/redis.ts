import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

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

/**
 * A throwaway redis-server on a free loopback port: no persistence (`--save ''`,
 * `--appendonly no`), its own temporary directory, removed at stop.
 */
export class RedisProcess {
  readonly port: number;
  readonly pid: number;
  readonly startRss: number | null;
  readonly #child: ChildProcess;
  readonly #dir: string;
  readonly #exited: Promise<unknown>;

  private constructor(child: ChildProcess, port: number, dir: string, exited: Promise<unknown>) {
    this.#child = child;
    this.port = port;
    this.pid = child.pid ?? -1;
    this.startRss = procRss(this.pid, 'VmRSS');
    this.#dir = dir;
    this.#exited = exited;
  }

  static async start(binary: string): Promise<RedisProcess> {
    const dir = await mkdtemp(join(tmpdir(), 'pigeonhole-bench-redis-'));
    // The port is free when asked; another process could take it before Redis binds, so retry.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const child = spawn(
        binary,
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', '--loglevel', 'warning'],
        { stdio: ['ignore', 'ignore', 'inherit'] },
      );
      const exited = once(child, 'exit');
      exited.catch(() => {});
      const failed = exited.then(() => false);
      const ready = await Promise.race([waitForPong(port), failed]);
      if (ready) return new RedisProcess(child, port, dir, exited);
      child.kill('SIGKILL');
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

  async stop(): Promise<{ peakRss: number | null }> {
    const peakRss = procRss(this.pid, 'VmHWM');
    this.#child.kill('SIGTERM');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    try {
      await this.#exited;
    } finally {
      clearTimeout(timer);
      await rm(this.#dir, { recursive: true, force: true });
    }
    return { peakRss };
  }

  kill(): void {
    this.#child.kill('SIGKILL');
    void rm(this.#dir, { recursive: true, force: true });
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
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

let clockTicks: number | null = null;

function ticksPerSecond(): number {
  if (clockTicks === null) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5_000 }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** utime + stime of a process, from /proc/<pid>/stat; null when there is no /proc. */
export function procCpuMicros(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces: count fields after its closing ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? (ticks / ticksPerSecond()) * 1e6 : null;
  } catch {
    return null;
  }
}

/** Resident set of a process now (VmRSS) or at its peak (VmHWM), in bytes; null when there is no /proc. */
export function procRss(pid: number, field: 'VmRSS' | 'VmHWM'): number | null {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match === null ? null : Number(match[1]) * 1024;
  } catch {
    return null;
  }
}
