// `pigeonhole` and `pigeonhole serve` run as child processes, as a user's shell runs them:
// help and version, usage errors, a served session, signals, on-disk storage across
// restarts, the idle timeout and a port already taken.
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { SERVE_FLAGS } from '../../lib/cli/serve.js';
import { silentLogger } from '../../lib/logger.js';
import { createServer } from '../../lib/server.js';
import { type CliChild, type CliResult, runCli, startCli } from '../helpers/cli.js';
import { compose, LineClient } from '../helpers/line-client.js';
import { type LogLine, logLines } from '../helpers/serve-cli.js';
import { HOST } from '../helpers/server.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

// Children each start Node and tsx; on 2 cores more than a handful at once only queue up.
const MAX_CHILDREN = 6;
let running = 0;
const queued: (() => void)[] = [];

async function takeSlot(): Promise<() => void> {
  if (running >= MAX_CHILDREN) await new Promise<void>((resolve) => queued.push(resolve));
  else running += 1;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const next = queued.shift();
    if (next === undefined) running -= 1;
    else next(); // the slot passes straight on
  };
}

interface Cli extends CliChild {
  /** Everything the child has printed so far. */
  output(): { stdout: string; stderr: string };
}

/** startCli, once fewer than MAX_CHILDREN children run; the slot frees when the child exits. */
async function start(t: ExecutionContext, args: string[]): Promise<Cli> {
  const release = await takeSlot();
  let cli: CliChild;
  try {
    cli = startCli(t, args);
  } catch (err) {
    release();
    throw err;
  }
  void cli.result.finally(release);
  let stdout = '';
  let stderr = '';
  cli.child.stdout.on('data', (text: string) => (stdout += text));
  cli.child.stderr.on('data', (text: string) => (stderr += text));
  return { ...cli, output: () => ({ stdout, stderr }) };
}

async function run(t: ExecutionContext, args: string[]): Promise<CliResult> {
  const cli = await start(t, args);
  cli.child.stdin.end();
  return cli.result;
}

/** Starts `pigeonhole serve <args>` and waits for its `listening on` line. */
async function serve(t: ExecutionContext, args: string[]): Promise<{ cli: Cli; port: number }> {
  const cli = await start(t, ['serve', ...args]);
  await cli.waitForStdout('\n');
  const { stdout } = cli.output();
  const match = /^listening on 127\.0\.0\.1:(\d+)\n$/.exec(stdout);
  if (match === null) throw new Error(`unexpected first output: ${JSON.stringify(stdout)}; stderr: ${cli.output().stderr}`);
  return { cli, port: Number(match[1]) };
}

/** Signals the server, checks it closed gracefully, and returns what it printed (and logged). */
async function stop(t: ExecutionContext, cli: Cli, signal: NodeJS.Signals = 'SIGTERM'): Promise<CliResult & { logs: LogLine[] }> {
  cli.child.kill(signal);
  const result = await cli.result;
  t.is(result.code, 0, `exit after ${signal}; stderr: ${result.stderr}`);
  const logs = logLines(t, result.stderr);
  t.true(logs.some((line) => line.msg === `${signal}: closing` && line.signal === signal), result.stderr);
  t.is(logs.at(-1)?.msg, 'closed', 'closed is the last thing said');
  return { ...result, logs };
}

/** The messages of every log line. */
function messages(logs: LogLine[]): string[] {
  return logs.map((line) => line.msg);
}

async function connect(t: ExecutionContext, port: number): Promise<LineClient> {
  const client = await LineClient.connect(port, HOST);
  t.teardown(() => client.destroy());
  return client;
}

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pigeonhole-serve-test-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A usage error: exit 2, one line naming the problem, the pointer to --help, no stack. */
function assertUsageError(t: ExecutionContext, result: CliResult, reason: RegExp, help = 'pigeonhole --help'): void {
  t.is(result.code, 2, result.stderr);
  t.is(result.stdout, '');
  const lines = result.stderr.split('\n');
  t.is(lines.length, 3, `two lines and a final LF: ${JSON.stringify(result.stderr)}`);
  t.regex(lines[0] ?? '', /^pigeonhole: \S/);
  t.regex(lines[0] ?? '', reason);
  t.is(lines[1], `Run '${help}' for usage.`);
  t.notRegex(result.stderr, /^\s+at /m, 'no stack trace');
}

/** The long flags (and short aliases) that `serve` hands to parseArgs. */
function serveFlags(): string[] {
  return Object.entries(SERVE_FLAGS).flatMap(([name, spec]) => ('short' in spec ? [`--${name}`, `-${spec.short}`] : [`--${name}`]));
}

// --- help and version --------------------------------------------------------

test('--help lists every command and exits 0; no arguments prints usage and exits 2', async (t) => {
  const [help, bare] = await Promise.all([run(t, ['--help']), run(t, [])]);
  t.is(help.code, 0, help.stderr);
  t.regex(help.stdout, /^Usage: pigeonhole <command>/);
  for (const command of ['serve', 'client', 'send', 'read', 'check', 'salvage']) t.regex(help.stdout, new RegExp(`^ {2}${command} `, 'm'), command);

  t.is(bare.code, 2);
  t.is(bare.stdout, '', 'asked for nothing: the usage is an error, on stderr');
  t.regex(bare.stderr, /^Usage: pigeonhole <command>/);
});

test('help serve and serve --help print the serve help, which names every flag serve accepts', async (t) => {
  const [viaHelp, viaFlag, short] = await Promise.all([run(t, ['help', 'serve']), run(t, ['serve', '--help']), run(t, ['serve', '-h'])]);
  const flags = serveFlags();
  for (const result of [viaHelp, viaFlag, short]) {
    t.is(result.code, 0, result.stderr);
    t.is(result.stderr, '');
  }
  t.regex(viaHelp.stdout, /^Usage: pigeonhole serve /);
  t.is(viaFlag.stdout, viaHelp.stdout);
  t.is(short.stdout, viaHelp.stdout);

  for (const flag of [
    '--host', '--port', '--shards', '--acceptors', '--max-messages', '--max-line', '--idle-timeout', '--data-dir', '--memory', '--fsync',
    '--tls-cert', '--tls-key', '--tls-ca', '--metrics', '--log-level', '--log-format',
    '--max-connections', '--max-connections-per-ip', '--max-connection-rate-per-ip', '--line-timeout', '--max-line-buffer', '--max-store-bytes', '--min-free-disk',
    '--help', '-h',
  ]) {
    t.true(flags.includes(flag), `${flag} is a serve flag: ${flags.join(' ')}`);
  }
  for (const flag of flags) {
    t.regex(viaHelp.stdout, new RegExp(`(^|[\\s,])${flag}(?![\\w-])`, 'm'), `${flag} is in the serve help`);
  }
});

test('--version prints the version in package.json', async (t) => {
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const [long, short] = await Promise.all([run(t, ['--version']), run(t, ['-v'])]);
  for (const result of [long, short]) {
    t.is(result.code, 0, result.stderr);
    t.is(result.stdout, `${pkg.version}\n`);
  }
});

// --- usage errors ------------------------------------------------------------

const USAGE_ERRORS: [string[], RegExp][] = [
  [['frobnicate'], /unknown command 'frobnicate'/],
  [['help', 'frobnicate'], /no help for 'frobnicate'/],
  [['serve', '--bogus'], /'--bogus'/],
  [['serve', '--port', '70000'], /--port must be from 0 to 65535, got 70000/],
  [['serve', '--port', 'abc'], /--port must be a whole number, got 'abc'/],
  // parseArgs takes "-1" for a flag; its own (multi-line) explanation must still be one line.
  [['serve', '--shards', '-1'], /'--shards'/],
  [['serve', '--shards=-1'], /--shards must be a whole number, got '-1'/],
  [['serve', '--acceptors', '0'], /--acceptors must be from 1 to 64, got 0/],
  [['serve', '--acceptors', '2', '--shards', '0'], /acceptors: 2 acceptor threads need worker shards \(shards >= 1\)/],
  [['serve', '--max-line', '10'], /--max-line must be from \d+ to \d+ bytes, got 10/],
  [['serve', '--max-line', '64X'], /--max-line must be a size in bytes/],
  [['serve', '--idle-timeout', 'x'], /--idle-timeout must be a whole number, got 'x'/],
  [['serve', '--memory', '--data-dir', 'd'], /--memory and --data-dir/],
  [['serve', '--memory', '--fsync'], /--fsync/],
  [['serve', 'extra'], /'extra'/],
  // The limit flags' own checks are unit-tested (limit-flags.test.ts); these show they reach the exit code.
  [['serve', '--max-store-bytes', '1T'], /--max-store-bytes must be a size in bytes/],
  [['serve', '--max-line', '70000', '--max-line-buffer', '64K'], /maxLineBufferBytes: it must exceed maxLineBytes/],
  // A size with a suffix: 1M is 1,048,576 bytes (1024-based), not under a 1,000,001-byte buffer.
  [['serve', '--max-line', '1M', '--max-line-buffer', '1000001'], /maxLineBufferBytes: it must exceed maxLineBytes/],
  [['check', '--data-dir', '/nonexistent/pigeonhole-data'], /no data directory at \/nonexistent\/pigeonhole-data/],
];

for (const [args, reason] of USAGE_ERRORS) {
  test(`usage error: pigeonhole ${args.join(' ')}`, async (t) => {
    const result = await run(t, args);
    // A command's mistake points at that command's help, which lists its flags.
    const [name] = args;
    assertUsageError(t, result, reason, name === 'frobnicate' || name === 'help' ? 'pigeonhole --help' : `pigeonhole ${name} --help`);
  });
}

test('check and salvage take the data directory from PIGEONHOLE_DATA_DIR too, as serve does; --data-dir wins', async (t) => {
  const missing = await runCli(t, ['check'], '', { PIGEONHOLE_DATA_DIR: '/nonexistent/from-env' });
  assertUsageError(t, missing, /^pigeonhole: no data directory at \/nonexistent\/from-env \(--data-dir\) \(from PIGEONHOLE_DATA_DIR in the environment\)$/, 'pigeonhole check --help');
  const dir = await mkdtemp(join(tmpdir(), 'pigeonhole-env-dir-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const server = createServer({ shards: 1, dataDir: dir, logger: silentLogger });
  await server.listen({ port: 0 });
  await server.close();
  const found = await runCli(t, ['check'], '', { PIGEONHOLE_DATA_DIR: dir });
  t.is(found.code, 0, found.stderr);
  t.regex(found.stdout, /no damage found/);
  const given = await runCli(t, ['salvage', '--data-dir', '/nonexistent/given'], '', { PIGEONHOLE_DATA_DIR: dir });
  assertUsageError(t, given, /^pigeonhole: no data directory at \/nonexistent\/given \(--data-dir\)$/, 'pigeonhole salvage --help');
});

// --- serving -----------------------------------------------------------------

test('serve --memory --shards 0: the seed examples over TCP, then SIGTERM closes it with exit 0', async (t) => {
  const { cli, port } = await serve(t, ['--memory', '--port', '0', '--shards', '0']);
  t.not(port, 0);

  // Seed Example 2: bob composes to alice.
  const bob = await connect(t, port);
  await bob.send('LOGIN bob\n');
  t.deepEqual(await bob.lines(1), ['0']);
  await bob.send(compose('alice', 'Hi Alice!'));
  t.deepEqual(await bob.lines(1), ['MESSAGE SENT']);
  await bob.send('EXIT\n');
  await bob.waitClosed();

  // Seed Example 4 (with alice, who now has the message): a lower-case command is dropped.
  const alice = await connect(t, port);
  await alice.send('LOGIN alice\n');
  t.deepEqual(await alice.lines(1), ['1']);
  await alice.send('read\n');
  const closed = await alice.waitClosed();
  t.is(closed.trailing.length, 0, 'a drop sends no error text');

  const result = await stop(t, cli, 'SIGTERM');
  t.true(messages(result.logs).includes('mailboxes inline in the acceptor thread; mailboxes stored in memory (lost when the server stops)'), result.stderr);
  t.is(result.stdout, `listening on 127.0.0.1:${port}\n`);
});

test('SIGINT closes the server with exit 0 too, also with a client still connected', async (t) => {
  const { cli, port } = await serve(t, ['--memory', '--port', '0', '--shards', '1']);
  const carol = await connect(t, port);
  await carol.send('LOGIN carol\n');
  t.deepEqual(await carol.lines(1), ['0']);
  const result = await stop(t, cli, 'SIGINT');
  t.true(messages(result.logs).some((message) => message.startsWith('1 mailbox shard worker thread; mailboxes stored in memory')), result.stderr);
  await carol.waitClosed();
});

test('serve --acceptors 2 --shards 1: messages cross between the threads; SIGTERM still closes with exit 0', async (t) => {
  const { cli, port } = await serve(t, ['--memory', '--port', '0', '--shards', '1', '--acceptors', '2']);
  // Enough connections that both threads hold some (their shares are kept even).
  const clients = await Promise.all(Array.from({ length: 6 }, () => connect(t, port)));
  await Promise.all(clients.map((client, i) => client.send(`LOGIN cli${i}\n`)));
  for (const client of clients) t.deepEqual(await client.lines(1), ['0']);
  await Promise.all(clients.map((client, i) => client.send(compose(`cli${(i + 1) % clients.length}`, `from ${i}`))));
  for (const client of clients) t.deepEqual(await client.lines(1), ['MESSAGE SENT']);
  await Promise.all(clients.map((client) => client.send('READ\n')));
  for (const [i, client] of clients.entries()) t.deepEqual(await client.lines(2), [`cli${(i + clients.length - 1) % clients.length}`, `from ${(i + clients.length - 1) % clients.length}`]);
  const result = await stop(t, cli, 'SIGTERM');
  t.true(messages(result.logs).some((message) => message.startsWith('2 acceptor threads; 1 mailbox shard worker thread; mailboxes stored in memory')), result.stderr);
  for (const client of clients) await client.waitClosed();
});

test('SIGTERM sent the moment `listening on` appears still closes gracefully', async (t) => {
  const cli = await start(t, ['serve', '--memory', '--port', '0', '--shards', '0']);
  await cli.waitForStdout('listening on');
  await stop(t, cli, 'SIGTERM');
});

test('serve --data-dir: says where it stores, and a message survives SIGTERM and a restart', async (t) => {
  const dir = await tempDir(t);
  // Given relative to the working directory (the repository root), shown absolute.
  const given = relative(ROOT, dir);
  t.false(given.startsWith('/'));

  const first = await serve(t, ['--port', '0', '--shards', '0', '--data-dir', given]);
  const bob = await connect(t, first.port);
  await bob.send(Buffer.concat([Buffer.from('LOGIN bob\n'), compose('alice', 'Hi Alice!')]));
  t.deepEqual(await bob.lines(2), ['0', 'MESSAGE SENT']);
  const stopped = await stop(t, first.cli);
  t.true(messages(stopped.logs).some((message) => message.endsWith(`mailboxes stored in ${dir}`)), stopped.stderr);

  const second = await serve(t, ['--port', '0', '--shards', '0', '--data-dir', dir]);
  const alice = await connect(t, second.port);
  await alice.send('LOGIN alice\nREAD\nREAD\n');
  t.deepEqual(await alice.lines(4), ['1', 'bob', 'Hi Alice!', 'READ ERROR']);
  await stop(t, second.cli);
});

test('serve --data-dir --fsync says so', async (t) => {
  const dir = await tempDir(t);
  const { cli } = await serve(t, ['--port', '0', '--shards', '0', '--data-dir', dir, '--fsync']);
  const result = await stop(t, cli);
  t.true(messages(result.logs).some((message) => message.endsWith(`mailboxes stored in ${dir} (fsync on every commit)`)), result.stderr);
});

test('a data dir written with --shards 2 keeps its messages when restarted with --shards 1', async (t) => {
  const dir = await tempDir(t);
  const first = await serve(t, ['--port', '0', '--shards', '2', '--data-dir', dir]);
  const bob = await connect(t, first.port);
  const users = ['alice', 'dave', 'erin', 'frank'];
  await bob.send(Buffer.concat([Buffer.from('LOGIN bob\n'), ...users.map((user) => compose(user, `Hi ${user}!`))]));
  t.deepEqual(await bob.lines(1 + users.length), ['0', ...users.map(() => 'MESSAGE SENT')]);
  const stopped = await stop(t, first.cli);
  t.true(messages(stopped.logs).some((message) => message.startsWith('2 mailbox shard worker threads; mailboxes stored in ')), stopped.stderr);

  const second = await serve(t, ['--port', '0', '--shards', '1', '--data-dir', dir]);
  for (const user of users) {
    const client = await connect(t, second.port);
    await client.send(`LOGIN ${user}\nREAD\n`);
    t.deepEqual(await client.lines(3), ['1', 'bob', `Hi ${user}!`], user);
  }
  await stop(t, second.cli);
});

test('--idle-timeout 1 closes a silent connection', async (t) => {
  const { cli, port } = await serve(t, ['--memory', '--port', '0', '--shards', '0', '--idle-timeout', '1']);
  const silent = await connect(t, port);
  const closed = await silent.waitClosed(8_000);
  t.is(closed.trailing.length, 0);
  await stop(t, cli);
});

test('a port already in use: exit 1 with "cannot listen", no stack, and no thread left running', async (t) => {
  const taken = createNetServer();
  taken.listen(0, HOST);
  await once(taken, 'listening');
  t.teardown(() => new Promise<void>((resolve) => taken.close(() => resolve())));
  const { port } = taken.address() as AddressInfo;

  // shards 0 and, as by default, worker threads: the threads must not keep the process alive.
  const results = await Promise.all(['0', '2'].map((shards) => run(t, ['serve', '--memory', '--port', String(port), '--shards', shards])));
  for (const result of results) {
    t.is(result.code, 1, result.stderr);
    t.is(result.stdout, '');
    t.regex(result.stderr, /^pigeonhole: cannot listen: .*EADDRINUSE.*\n$/);
    t.notRegex(result.stderr, /^\s+at /m);
  }
});

test('help check and help salvage say what they do and their exit codes', async (t) => {
  const [check, salvage] = await Promise.all([run(t, ['help', 'check']), run(t, ['salvage', '--help'])]);
  t.is(check.code, 0, check.stderr);
  t.regex(check.stdout, /^Usage: pigeonhole check /);
  t.regex(check.stdout, /Exit codes: 0 no damage; 1 damage found/);
  t.regex(check.stdout, /write-ahead log/);
  t.regex(check.stdout, /a byte changed inside a message's body \(SQLite keeps no page checksums\)/);
  t.is(salvage.code, 0, salvage.stderr);
  t.regex(salvage.stdout, /^Usage: pigeonhole salvage /);
  t.regex(salvage.stdout, /exactly how many/);
});

test('serve --memory --max-store-bytes caps the memory store: COMPOSE fails past it', async (t) => {
  const { port } = await serve(t, ['--memory', '--port', '0', '--shards', '0', '--max-store-bytes', '64K']);
  const client = await connect(t, port);
  await client.send('LOGIN hoarder\n');
  await client.lines(1);
  const replies: string[] = [];
  for (let i = 0; i < 40 && !replies.includes('MESSAGE FAILED'); i++) {
    await client.send(compose(`to${i}`, 'm'.repeat(4000)));
    replies.push(...(await client.lines(1)));
  }
  t.true(replies.includes('MESSAGE FAILED'), 'refused within 40 messages of 4 kB');
  t.true(replies.filter((reply) => reply === 'MESSAGE SENT').length >= 10);
});
