// `pigeonhole serve` as a child process for tests of its operations: TLS, metrics, logs,
// the environment. Its stderr is read as JSON log lines (it is not a TTY).
import type { ExecutionContext } from 'ava';
import { type CliChild, type CliResult, startCli } from './cli.js';
import { REPLY_TIMEOUT_MS } from './line-client.js';

// A server lives through the client commands of its test, each a Node process of its own.
const SERVER_LIFETIME_MS = 90_000;

/** A JSON log line as pino writes it. */
export interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** pino's numeric levels. */
export const LEVEL = { debug: 20, info: 30, warn: 40, error: 50 } as const;

/** stderr as log lines; every line must be one JSON object with pino's fields. */
export function logLines(t: ExecutionContext, stderr: string): LogLine[] {
  return stderr
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const parsed = JSON.parse(line) as LogLine;
      t.is(typeof parsed.msg, 'string', line);
      t.is(typeof parsed.level, 'number', line);
      t.is(typeof parsed.time, 'number', line);
      return parsed;
    });
}

export interface Served extends CliChild {
  readonly port: number;
  /** The address in the `listening on` line. */
  readonly host: string;
  /** Resolves once a log line satisfies `match`; rejects if the child exits or time runs out. */
  waitForLog(match: (line: LogLine) => boolean, what: string): Promise<LogLine>;
}

/** Starts `pigeonhole serve <args>` with `env` and waits for its `listening on` line. */
export async function startServe(t: ExecutionContext, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Served> {
  const cli = startCli(t, ['serve', ...args], env, SERVER_LIFETIME_MS);
  await cli.waitForStdout('\n').catch((err: Error) => {
    throw new Error(`${err.message}; stderr: ${cli.output().stderr}`);
  });
  const listening = /^listening on (\S+):(\d+)\n/.exec(cli.output().stdout);
  if (listening === null) throw new Error(`no listening line: ${JSON.stringify(cli.output())}`);
  const waitForLog = async (match: (line: LogLine) => boolean, what: string): Promise<LogLine> => {
    const deadline = Date.now() + REPLY_TIMEOUT_MS;
    for (;;) {
      const { stderr } = cli.output();
      const found = stderr
        .split('\n')
        .filter((text) => text.endsWith('}'))
        .map((text) => JSON.parse(text) as LogLine)
        .find(match);
      if (found !== undefined) return found;
      if (cli.child.exitCode !== null || cli.child.signalCode !== null) throw new Error(`the server exited before logging ${what}; stderr: ${stderr}`);
      if (Date.now() > deadline) throw new Error(`no log line ${what} in time; stderr: ${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  return { ...cli, port: Number(listening[2]), host: listening[1] as string, waitForLog };
}

/** SIGTERM, then the exit code and every log line; the last must say closed. */
export async function stopServe(t: ExecutionContext, served: Served): Promise<CliResult & { logs: LogLine[] }> {
  served.child.kill('SIGTERM');
  const result = await served.result;
  t.is(result.code, 0, result.stderr);
  const logs = logLines(t, result.stderr);
  t.is(logs.at(-1)?.msg, 'closed');
  return { ...result, logs };
}
