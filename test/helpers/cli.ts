// Runs the pigeonhole CLI as a child process, as a user's shell would, with every wait bounded.
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer as createNetServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { HOST } from './line-client.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
// A child starts tsx and Node first: generous, but bounded.
export const CHILD_TIMEOUT_MS = 20_000;

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliChild {
  readonly child: ChildProcessWithoutNullStreams;
  readonly result: Promise<CliResult>;
  /** Resolves once stdout contains `text`; rejects if the child exits or time runs out first. */
  waitForStdout(text: string): Promise<void>;
  /** Everything the child has printed so far. */
  output(): { stdout: string; stderr: string };
}

/**
 * Starts `pigeonhole <args>` with a clean environment (no NO_COLOR, no TTY); it is killed
 * after `timeoutMs` (a server that outlives several client commands needs more).
 */
export function startCli(t: ExecutionContext, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = CHILD_TIMEOUT_MS): CliChild {
  const child = spawn(process.execPath, ['--import', 'tsx', 'lib/cli/main.ts', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const watchers = new Set<() => void>();
  child.stdout.setEncoding('utf8').on('data', (text: string) => {
    stdout += text;
    for (const watch of watchers) watch();
  });
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  child.stdin.on('error', () => {}); // the child may exit before reading all its input
  const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const result = new Promise<CliResult>((resolve) => {
    child.on('close', (code) => {
      clearTimeout(killer);
      for (const watch of watchers) watch();
      resolve({ code, stdout, stderr });
    });
  });
  t.teardown(() => {
    clearTimeout(killer);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const waitForStdout = (text: string): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const watch = (): void => {
        if (stdout.includes(text)) {
          watchers.delete(watch);
          resolve();
        } else if (child.exitCode !== null || child.signalCode !== null) {
          watchers.delete(watch);
          reject(new Error(`the child exited before printing ${JSON.stringify(text)}; stdout: ${stdout}; stderr: ${stderr}`));
        }
      };
      watchers.add(watch);
      watch();
    });
  return { child, result, waitForStdout, output: () => ({ stdout, stderr }) };
}

/** Runs `pigeonhole <args>` with `input` piped to its stdin (then closed), to the end. */
export function runCli(t: ExecutionContext, args: string[], input = '', env?: NodeJS.ProcessEnv): Promise<CliResult> {
  const cli = startCli(t, args, env);
  cli.child.stdin.end(input);
  return cli.result;
}

/** A port nothing listens on: one the OS just handed out and took back. */
export async function closedPort(): Promise<number> {
  const net = createNetServer();
  net.listen(0, HOST);
  await once(net, 'listening');
  const address = net.address();
  await new Promise<void>((resolve) => net.close(() => resolve()));
  if (address === null || typeof address !== 'object') throw new Error('no port');
  return address.port;
}
