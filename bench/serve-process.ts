// `pigeonhole serve` from the compiled code (dist/, as users run it) in a process of its
// own, for the benchmarks that measure a whole server: its memory, its restart time.
import { spawn } from 'node:child_process';
import { once } from 'node:events';

const MAIN = new URL('../dist/lib/cli/main.js', import.meta.url).pathname;

export interface ServeProcess {
  readonly pid: number;
  readonly port: number;
  /** From spawning to `listening on` on stdout. */
  readonly startMs: number;
  /** SIGTERM, and the process's exit. */
  stop(): Promise<void>;
}

/** Starts `pigeonhole serve --port 0 --log-level warn <args>` and resolves once it listens. */
export async function startServe(args: readonly string[]): Promise<ServeProcess> {
  const started = performance.now();
  // Warnings and errors still show; the info lines would only interleave with the report.
  const child = spawn(process.execPath, [MAIN, 'serve', '--port', '0', '--log-level', 'warn', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening on [^:]+:(\d+)/.exec(out);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`pigeonhole serve exited with ${code}`)));
  });
  return {
    pid: child.pid as number,
    port,
    startMs: performance.now() - started,
    stop: async () => {
      child.kill('SIGTERM');
      if (child.exitCode === null) await once(child, 'exit');
    },
  };
}
