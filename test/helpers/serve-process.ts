// `pigeonhole serve` as a process of its own (the CLI under tsx), so a test can kill it
// as a crash would, or run several nodes side by side.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import type { ExecutionContext } from 'ava';
import { until } from './line-client.js';

const MAIN = new URL('../../lib/cli/main.ts', import.meta.url).pathname;
const START_TIMEOUT_MS = 30_000;

export interface ServeProcess {
  readonly child: ChildProcess;
  readonly port: number;
  /** Everything it wrote to stderr so far. */
  readonly stderr: () => string;
  /** SIGKILL, resolving once it has exited. */
  kill(): Promise<void>;
  /** Resolves with stderr once it matches `pattern`; rejects after `ms`. */
  waitForStderr(pattern: RegExp, ms?: number): Promise<string>;
}

/** Starts `pigeonhole serve --port 0 ...args` (with `env` added to ours) and resolves once it listens; SIGKILLed at the end if still running. */
export async function serveProcess(t: Pick<ExecutionContext, 'teardown'> | null, args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<ServeProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const exited = once(child, 'exit').catch(() => {});
  const kill = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  t?.teardown(kill);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let stdout = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${stderr}`)), START_TIMEOUT_MS);
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}: ${stderr}`));
    });
  });
  const waitForStderr = async (pattern: RegExp, ms = 10_000): Promise<string> => {
    await until(() => pattern.test(stderr), `stderr matches ${pattern}`, ms).catch((err: Error) => {
      throw new Error(`${err.message}: ${stderr}`);
    });
    return stderr;
  };
  return { child, port, stderr: () => stderr, kill, waitForStderr };
}
