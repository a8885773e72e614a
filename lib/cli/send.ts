import { parseArgs } from 'node:util';
import { connect } from '../client/index.js';
import { messageBytes } from '../client/options.js';
import { ClientError } from '../errors.js';
import { clientFailure } from './client.js';
import { SERVER_FLAGS, SERVER_FLAGS_HELP, maxLineFlag, serverAddress } from './server-flags.js';
import { UsageError, userFlag } from './flags.js';

export const SEND_HELP = `Usage: pigeonhole send --from USER --to USER [options] MESSAGE...

Logs in as --from, sends one message to --to and leaves. Several MESSAGE words are
joined with single spaces, as echo does: quote the message to keep its spacing.

Options:
  --from USER      log in as USER: the sender the recipient will see
  --to USER        the recipient
${SERVER_FLAGS_HELP}
  -h, --help       show this help

Exit codes: 0 the message was stored (MESSAGE SENT); 1 it was not, because the
recipient's mailbox is full or the server could not store it (MESSAGE FAILED), or the server is unreachable or dropped
the connection; 2 a bad option or message (nothing is sent).

Example: pigeonhole send --from bob --to alice "Hi Alice!"
`;

export async function send(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { ...SERVER_FLAGS, from: { type: 'string' }, to: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
    allowPositionals: true,
  });
  if (values.help) {
    process.stdout.write(SEND_HELP);
    return 0;
  }
  const from = userFlag('from', values.from);
  const to = userFlag('to', values.to);
  if (positionals.length === 0) throw new UsageError('give the message to send, e.g. pigeonhole send --from bob --to alice "Hi Alice!"');
  const message = positionals.join(' ');
  try {
    messageBytes(message, maxLineFlag(values));
  } catch (err) {
    if (err instanceof ClientError) throw new UsageError(err.message);
    throw err;
  }
  // After the message is known to be sendable: this reads the TLS files.
  const server = serverAddress(values);

  try {
    const client = await connect(server);
    try {
      const [, sent] = await Promise.all([client.login(from), client.compose(to, message)]);
      await client.exit();
      if (sent) {
        process.stdout.write(`sent to ${to}\n`);
        return 0;
      }
      process.stderr.write(`pigeonhole: not sent: the mailbox of ${to} is full, or the server could not store it (MESSAGE FAILED)\n`);
      return 1;
    } finally {
      client.close();
    }
  } catch (err) {
    return clientFailure(err);
  }
}
