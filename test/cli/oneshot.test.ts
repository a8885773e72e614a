import test from 'ava';
import { connect } from '../../lib/client/index.js';
import { read } from '../../lib/cli/read.js';
import { send } from '../../lib/cli/send.js';
import { SERVER_FLAGS } from '../../lib/cli/server-flags.js';
import { UsageError } from '../../lib/cli/flags.js';
import { closedPort, runCli } from '../helpers/cli.js';
import { HOST, startServer } from '../helpers/server.js';

test('send stores a message; read prints it with its sender; exit codes say whether there was one', async (t) => {
  const { port } = await startServer(t);
  const sent = await runCli(t, ['send', '--port', String(port), '--host', HOST, '--from', 'bob', '--to', 'alice', 'Hi Alice!']);
  t.is(sent.code, 0, sent.stderr);
  t.is(sent.stdout, 'sent to alice\n');

  const words = await runCli(t, ['send', '--port', String(port), '--from', 'carol', '--to', 'alice', 'several', 'words,', 'joined']);
  t.is(words.code, 0, words.stderr);

  const first = await runCli(t, ['read', '--port', String(port), '--user', 'alice']);
  t.is(first.code, 0, first.stderr);
  t.is(first.stdout, 'bob: Hi Alice!\n', 'without --all, only the oldest');

  const rest = await runCli(t, ['read', '--port', String(port), '--user', 'alice', '--all']);
  t.is(rest.code, 0, rest.stderr);
  t.is(rest.stdout, 'carol: several words, joined\n');

  const none = await runCli(t, ['read', '--port', String(port), '--user', 'alice']);
  t.is(none.code, 1);
  t.is(none.stdout, '');
  t.regex(none.stderr, /no messages for alice/);
});

test('read --all prints every waiting message, oldest first', async (t) => {
  const { port } = await startServer(t, { shards: 2 });
  for (const text of ['one', 'two: with a colon', 'drei ✓']) {
    const sent = await runCli(t, ['send', '--port', String(port), '--from', 'bob', '--to', 'dave', text]);
    t.is(sent.code, 0, sent.stderr);
  }
  const all = await runCli(t, ['read', '--port', String(port), '--user', 'dave', '--all']);
  t.is(all.code, 0, all.stderr);
  t.is(all.stdout, 'bob: one\nbob: two: with a colon\nbob: drei ✓\n');
});

test('send to a full mailbox: MESSAGE FAILED is exit 1 with the reason', async (t) => {
  const { port } = await startServer(t, { maxMessagesPerUser: 1 });
  const args = ['send', '--port', String(port), '--from', 'bob', '--to', 'erin'];
  t.is((await runCli(t, [...args, 'first'])).code, 0);
  const full = await runCli(t, [...args, 'second']);
  t.is(full.code, 1);
  t.regex(full.stderr, /^pigeonhole: not sent: the mailbox of erin is full/);
});

test('bad flags and values are usage errors, refused before connecting', async (t) => {
  const { port } = await startServer(t);
  const p = String(port);
  const cases: [(args: string[]) => Promise<number>, string[], RegExp][] = [
    [send, ['--port', p, '--to', 'alice', 'hi'], /--from is required/],
    [send, ['--port', p, '--from', 'bob', 'hi'], /--to is required/],
    [send, ['--port', p, '--from', 'b b', '--to', 'alice', 'hi'], /bad --from: a username cannot contain a space/],
    [send, ['--port', p, '--from', 'bob', '--to', 'al\x01ice', 'hi'], /bad --to: a username may only use visible ASCII/],
    [send, ['--port', p, '--from', 'bob', '--to', 'alice'], /give the message/],
    [send, ['--port', p, '--from', 'bob', '--to', 'alice', 'two\nlines'], /line break/],
    [send, ['--port', p, '--from', 'bob', '--to', 'alice', 'x'.repeat(65_537)], /at most 65536 bytes/],
    [send, ['--port', 'x', '--from', 'bob', '--to', 'alice', 'hi'], /--port must be a whole number/],
    [send, ['--port', '0', '--from', 'bob', '--to', 'alice', 'hi'], /--port must be from 1/],
    [send, ['--host', '', '--from', 'bob', '--to', 'alice', 'hi'], /--host cannot be empty/],
    [send, ['--bogus'], /bogus/],
    [read, ['--port', p], /--user is required/],
    [read, ['--port', p, '--user', ''], /bad --user: a username cannot be empty/],
    [read, ['--port', p, '--user', 'alice', 'extra'], /extra/],
    [read, ['--port', p, '--user', 'alice', '--all=yes'], /all/],
    [read, ['--port', p, '--user', 'alice', '--max-line', '10'], /--max-line must be from 264/],
  ];
  for (const [command, args, expected] of cases) {
    const err = await t.throwsAsync(command(args), undefined, args.join(' '));
    // main turns exactly these into exit code 2 (checked through the real CLI below).
    const usage = err instanceof UsageError || String((err as { code?: unknown } | undefined)?.code).startsWith('ERR_PARSE_ARGS_');
    t.true(usage, `${args.join(' ')}: ${String(err)}`);
    t.regex(err?.message ?? '', expected, args.join(' '));
  }
  const check = await connect({ host: HOST, port, timeoutMs: 5_000 });
  t.is(await check.login('alice'), 0, 'nothing reached alice');
  check.close();
});

test("--max-line matches a server run with a smaller line limit: a longer message is refused before sending", async (t) => {
  const { port } = await startServer(t, { maxLineBytes: 1024 });
  const args = ['--port', String(port), '--from', 'bob', '--to', 'frank'];
  const refused = await runCli(t, ['send', ...args, '--max-line', '1K', 'x'.repeat(1500)]);
  t.is(refused.code, 2, 'refused before connecting');
  t.regex(refused.stderr, /at most 1024 bytes/);
  // Without the flag the client believes the default and the server drops the connection.
  const dropped = await runCli(t, ['send', ...args, 'x'.repeat(1500)]);
  t.is(dropped.code, 1, dropped.stderr);
  const fits = await runCli(t, ['send', ...args, '--max-line', '1K', 'y'.repeat(1000)]);
  t.is(fits.code, 0, fits.stderr);
  const got = await runCli(t, ['read', '--port', String(port), '--user', 'frank', '--all', '--max-line', '1K']);
  t.is(got.stdout, `bob: ${'y'.repeat(1000)}\n`, 'only the message that fit was stored');
});

test('through the real CLI a bad flag is exit 2 with a message', async (t) => {
  const sent = await runCli(t, ['send', '--from', 'bob', '--to', 'a b', 'hi']);
  t.is(sent.code, 2);
  t.regex(sent.stderr, /^pigeonhole: bad --to: a username cannot contain a space\n/);
  const read = await runCli(t, ['read', '--user', 'alice', '--port', '99999']);
  t.is(read.code, 2);
  t.regex(read.stderr, /--port must be from 1 to 65535/);
});

test('an unreachable server: one line and exit 1', async (t) => {
  const port = String(await closedPort());
  for (const args of [['send', '--port', port, '--from', 'bob', '--to', 'alice', 'hi'], ['read', '--port', port, '--user', 'alice']]) {
    const result = await runCli(t, args);
    t.is(result.code, 1);
    t.regex(result.stderr, /^pigeonhole: cannot connect to 127\.0\.0\.1:\d+: [^\n]*\n$/);
  }
});

test('--help for send and read, and the main help lists them', async (t) => {
  const send = await runCli(t, ['send', '--help']);
  t.is(send.code, 0);
  t.regex(send.stdout, /Exit codes: 0 the message was stored/);
  const read = await runCli(t, ['read', '--help']);
  t.is(read.code, 0);
  t.regex(read.stdout, /Exit codes: 0 at least one message was read; 1 there was none/);
  for (const flag of Object.keys(SERVER_FLAGS)) {
    for (const [name, help] of [['send', send.stdout], ['read', read.stdout]] as const) t.regex(help, new RegExp(`--${flag}(?![\\w-])`), `--${flag} is in the ${name} help`);
  }
  const main = await runCli(t, ['--help']);
  t.regex(main.stdout, /client .*\n.*send .*\n.*read /);
});
