import { parseArgs } from 'node:util';
import { type ReadResult, connect } from '../client/index.js';
import { clientFailure } from './client.js';
import { SERVER_FLAGS, SERVER_FLAGS_HELP, serverAddress } from './server-flags.js';
import { userFlag } from './flags.js';
import { printable } from './terminal.js';

export const READ_HELP = `Usage: pigeonhole read --user USER [--all] [options]

Logs in as --user and reads the oldest waiting message, or with --all every message
that was waiting at login, oldest first. A message read is removed from the server.
Each is printed on its own line as

  SENDER: MESSAGE

The sender is everything before the first ": " (a username never contains a space).
On a terminal, control characters in a message are shown escaped as \\xNN.

Options:
  --user USER      whose mailbox to read
  --all            read every waiting message, not just the oldest
${SERVER_FLAGS_HELP}
  -h, --help       show this help

Exit codes: 0 at least one message was read; 1 there was none (a note goes to
stderr), or the server is unreachable or dropped the connection; 2 a bad option.
`;

// --all pipelines this many READs at a time: fast, yet it never asks far past the end.
const BATCH = 64;

export async function read(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { ...SERVER_FLAGS, user: { type: 'string' }, all: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(READ_HELP);
    return 0;
  }
  const user = userFlag('user', values.user);
  const server = serverAddress(values);
  const terminal = process.stdout.isTTY === true;
  const show = (result: ReadResult): void => void process.stdout.write(`${result.from}: ${printable(result.message, terminal)}\n`);

  try {
    const client = await connect(server);
    try {
      const waiting = await client.login(user);
      let shown = 0;
      // Bounded by the count at login: messages arriving meanwhile wait for the next read.
      let left = values.all === true ? waiting : 1;
      while (left > 0) {
        const batch = Array.from({ length: Math.min(left, BATCH) }, () => client.read());
        left -= batch.length;
        let emptied = false;
        for (const result of await Promise.all(batch)) {
          // Another connection of the same user may have read some meanwhile.
          if (result === null) emptied = true;
          else {
            show(result);
            shown++;
          }
        }
        if (emptied) break;
      }
      await client.exit();
      if (shown === 0) process.stderr.write(`pigeonhole: no messages for ${user}\n`);
      return shown > 0 ? 0 : 1;
    } finally {
      client.close();
    }
  } catch (err) {
    return clientFailure(err);
  }
}
