import { PassThrough } from 'node:stream';
import test from 'ava';
import { connect } from '../../lib/client/index.js';
import { runInteractive } from '../../lib/cli/interactive.js';
import { SERVER_FLAGS } from '../../lib/cli/server-flags.js';
import { printable } from '../../lib/cli/terminal.js';
import { closedPort, runCli, startCli } from '../helpers/cli.js';
import { HOST, startServer } from '../helpers/server.js';

async function mailboxCount(port: number, user: string): Promise<number> {
  const client = await connect({ host: HOST, port, timeoutMs: 5_000 });
  try {
    return await client.login(user);
  } finally {
    client.close();
  }
}

test('piped input: log in, compose, read; no prompts on stdout', async (t) => {
  const { port } = await startServer(t);
  const bob = await runCli(t, ['client', '--port', String(port), '--user', 'bob'], 'compose alice\nHi Alice!\nread\nexit\n');
  t.is(bob.code, 0, bob.stderr);
  t.is(bob.stdout, 'logged in as bob: no messages waiting\nsent to alice\nno messages\n');
  t.is(bob.stderr, '');

  // No exit command: end of input leaves just the same.
  const alice = await runCli(t, ['client', '--port', String(port), '--user', 'alice'], 'read\nread\n');
  t.is(alice.code, 0, alice.stderr);
  t.is(alice.stdout, 'logged in as alice: 1 message waiting\nbob: Hi Alice!\nno messages\n');
});

test('without --user the first line is the username; help lists the commands', async (t) => {
  const { port } = await startServer(t);
  const result = await runCli(t, ['client', '--port', String(port)], 'carol\nhelp\ncompose carol\n\nread\n');
  t.is(result.code, 0, result.stderr);
  const lines = result.stdout.split('\n');
  t.is(lines[0], 'logged in as carol: no messages waiting');
  t.regex(result.stdout, /compose <user>/);
  t.regex(result.stdout, /^sent to carol\ncarol: \n$/m, 'an empty message is a message');
  t.notRegex(result.stdout, /username:|carol> /, 'no prompt noise');
});

test('a bad username is refused with the reason, and nothing is sent', async (t) => {
  const { port } = await startServer(t);
  const typed = await runCli(t, ['client', '--port', String(port)], 'bad name\ncompose alice\nhello\n');
  t.is(typed.code, 2);
  t.is(typed.stdout, '');
  t.regex(typed.stderr, /^pigeonhole: a username cannot contain a space\n$/);

  const flag = await runCli(t, ['client', '--port', String(port), '--user', 'x'.repeat(300)], 'read\n');
  t.is(flag.code, 2);
  t.regex(flag.stderr, /at most 256 bytes/);
  t.is(await mailboxCount(port, 'alice'), 0);
});

test('piped input: a bad command or argument is explained, stops the script, and sends nothing', async (t) => {
  const { port } = await startServer(t);
  const unknown = await runCli(t, ['client', '--port', String(port), '--user', 'bob'], 'READ\ncompose alice\nnot sent\n');
  t.is(unknown.code, 2);
  t.is(unknown.stdout, 'logged in as bob: no messages waiting\n');
  t.regex(unknown.stderr, /unknown command "READ"; type help/);

  const twoNames = await runCli(t, ['client', '--port', String(port), '--user', 'bob'], 'compose alice bob\nhello\n');
  t.is(twoNames.code, 2);
  t.regex(twoNames.stderr, /usage: compose <user>/);

  const badName = await runCli(t, ['client', '--port', String(port), '--user', 'bob'], 'compose ålice\nhello\n');
  t.is(badName.code, 2);
  t.regex(badName.stderr, /visible ASCII/);

  const noMessage = await runCli(t, ['client', '--port', String(port), '--user', 'bob'], 'compose alice\n');
  t.is(noMessage.code, 2);
  t.regex(noMessage.stderr, /nothing was sent/);

  t.is(await mailboxCount(port, 'alice'), 0);
  t.is(await mailboxCount(port, 'bob'), 0);
});

test('the server going away while the client waits: one line on stderr, exit 1', async (t) => {
  const { server, port } = await startServer(t);
  const cli = startCli(t, ['client', '--port', String(port), '--user', 'bob']);
  await cli.waitForStdout('logged in as bob');
  await server.close();
  const result = await cli.result;
  t.is(result.code, 1);
  t.regex(result.stderr, /^pigeonhole: the server at 127\.0\.0\.1:\d+ closed the connection\n$/);
  t.notRegex(result.stderr, /\bat .*\.ts:\d+/, 'no stack trace');
});

test('an unreachable server: one line on stderr, exit 1', async (t) => {
  const port = await closedPort();
  const result = await runCli(t, ['client', '--port', String(port), '--user', 'bob'], 'read\n');
  t.is(result.code, 1);
  t.regex(result.stderr, /^pigeonhole: cannot connect to 127\.0\.0\.1:\d+: .*ECONNREFUSED.*\n$/);
});

test('client --help and bad flags', async (t) => {
  const help = await runCli(t, ['client', '--help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /--user NAME/);
  for (const flag of Object.keys(SERVER_FLAGS)) t.regex(help.stdout, new RegExp(`--${flag}(?![\\w-])`), `--${flag} is in the client help`);
  t.regex(help.stdout, /Exit codes/);
  const badPort = await runCli(t, ['client', '--port', 'forty']);
  t.is(badPort.code, 2);
  t.regex(badPort.stderr, /--port must be a whole number/);
  const unknown = await runCli(t, ['client', '--usr', 'bob']);
  t.is(unknown.code, 2);
});

// The terminal side runs in-process on fake TTY streams: a child process would need a pty.
async function onFakeTerminal(port: number, steps: [prompt: string, keys: string][], env: NodeJS.ProcessEnv, endInput = true): Promise<{ code: number; out: string; err: string; inputFlowing: boolean | null }> {
  const input = Object.assign(new PassThrough(), { isTTY: true });
  const output = Object.assign(new PassThrough(), { isTTY: true, columns: 100 });
  const errorOutput = Object.assign(new PassThrough(), { isTTY: true });
  let out = '';
  let err = '';
  output.setEncoding('utf8').on('data', (text: string) => (out += text));
  errorOutput.setEncoding('utf8').on('data', (text: string) => (err += text));
  const running = runInteractive({ host: HOST, port, input, output, errorOutput, env });
  // Each key sequence waits (bounded) for the prompt it answers: typing ahead would work
  // too, but then the output would not show which prompt took which line.
  let seen = 0;
  for (const [prompt, keys] of steps) {
    for (let tries = 0; tries < 500; tries++) {
      const at = out.indexOf(prompt, seen);
      if (at !== -1) {
        seen = at + prompt.length;
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    input.write(keys);
  }
  // Bounded: if a step went wrong, end of input still ends the session (unless the test
  // is whether the session ends by itself: then a hang is the test's timeout).
  const ender = endInput ? setTimeout(() => input.end(), 5_000) : undefined;
  const code = await running.finally(() => clearTimeout(ender));
  return { code, out, err, inputFlowing: input.readableFlowing };
}

test('on a terminal: prompts, Tab completion, colour unless NO_COLOR, control characters escaped', async (t) => {
  const { port } = await startServer(t);
  const mallory = await connect({ host: HOST, port, timeoutMs: 5_000 });
  await mallory.login('mallory');
  t.true(await mallory.compose('eve', 'ring\x07\x1b]0;pwned\x07'));
  await mallory.exit();

  const coloured = await onFakeTerminal(
    port,
    [
      ['username: ', 'bad name\r'],
      ['username: ', 'eve\r'],
      ['eve> ', 'compose eve\r'],
      ['message> ', 'hello me\r'],
      // Keys arriving in one chunk count as a paste, where Tab is literal: type them apart.
      ['eve> ', 're'],
      ['re', '\t'],
      ['ad', '\r'],
      ['eve> ', 'read\r'],
      ['eve> ', 'ex'],
      ['ex', '\t'],
      ['it', '\r'],
    ],
    {},
  );
  t.is(coloured.code, 0, coloured.err);
  t.regex(coloured.err, /a username cannot contain a space; try another/, 'a terminal user is asked again');
  t.true(coloured.out.includes('logged in as \x1b[36meve\x1b[39m: 1 message waiting'));
  t.true(coloured.out.includes('\x1b[32msent to eve\x1b[39m'), 'green when it worked');
  t.true(coloured.out.includes('\x1b[36mmallory\x1b[39m: ring\\x07\\x1b]0;pwned\\x07'), 'the sender in colour, control characters escaped');
  t.true(coloured.out.includes('\x1b[36meve\x1b[39m: hello me'), 'Tab completed read');
  t.false(coloured.out.includes('\x1b]0;'), 'no raw escape sequence from a message reached the terminal');

  const plain = await onFakeTerminal(
    port,
    [
      ['username: ', 'eve\r'],
      ['eve> ', 'read\r'],
      ['eve> ', '\x04'],
    ],
    { NO_COLOR: '1' },
  );
  t.is(plain.code, 0, plain.err);
  t.true(plain.out.includes('no messages'));
  t.notRegex(plain.out, /\x1b\[3\dm/, 'no colour with NO_COLOR');
});

test('printable escapes control characters only for a terminal', (t) => {
  t.is(printable('a\x1b[2Jb\x07\tc\x9b', true), 'a\\x1b[2Jb\\x07\tc\\x9b');
  t.is(printable('a\x1b[2Jb', false), 'a\x1b[2Jb');
});

test('on a terminal, Ctrl-D or Ctrl-C at the message prompt sends nothing and ends the session', async (t) => {
  const { port } = await startServer(t);
  for (const key of ['\x04', '\x03']) {
    const ended = await onFakeTerminal(
      port,
      [
        ['username: ', 'eve\r'],
        ['eve> ', 'compose bob\r'],
        ['message> ', key],
      ],
      {},
      false,
    );
    t.is(ended.code, 0, ended.err);
    t.regex(ended.err, /input ended before the message; nothing was sent/);
    // Not asked again: a prompt would resume the terminal's input, and a process reading
    // its terminal does not exit.
    t.is(ended.out.split('eve> ').length - 1, 1, 'no prompt after the end of input');
    t.not(ended.inputFlowing, true, 'the input is left paused');
  }
  const bob = await connect({ host: HOST, port, timeoutMs: 5_000 });
  t.is(await bob.login('bob'), 0, 'nothing reached the mailbox');
  await bob.exit();
});
