import { parseArgs } from 'node:util';
import { ClientError } from '../errors.js';
import { INTERACTIVE_HELP, runInteractive } from './interactive.js';
import { SERVER_FLAGS, SERVER_FLAGS_HELP, serverAddress } from './server-flags.js';

export const CLIENT_HELP = `Usage: pigeonhole client [options]

An interactive client: logs in, then takes commands at a prompt. With piped input it
prints no prompts, so it can be scripted: printf 'read\\nexit\\n' | pigeonhole client --user bob

Options:
${SERVER_FLAGS_HELP}
  --user NAME      log in as NAME; without it the client asks
  -h, --help       show this help

${INTERACTIVE_HELP}
Exit codes: 0 after exit or end of input; 1 when the server is unreachable or drops
the connection; 2 for a bad option, or (piped input only) a refused line.
`;


/**
 * An expected failure of a client command (unreachable server, dropped connection,
 * timeout) becomes one line on stderr and exit code 1; anything else is a bug and is
 * rethrown for main to print in full.
 */
export function clientFailure(err: unknown): number {
  if (!(err instanceof ClientError)) throw err;
  process.stderr.write(`pigeonhole: ${err.message}\n`);
  return 1;
}

export async function client(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { ...SERVER_FLAGS, user: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(CLIENT_HELP);
    return 0;
  }
  const { host, port, tls, maxLineBytes } = serverAddress(values);
  return runInteractive({
    host,
    port,
    tls,
    maxLineBytes,
    user: values.user,
    input: process.stdin,
    output: process.stdout,
    errorOutput: process.stderr,
    env: process.env,
  });
}
