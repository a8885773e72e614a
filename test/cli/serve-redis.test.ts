// `pigeonhole serve --redis ...` and `--redis-cluster ...` as a user's shell runs them:
// an unreachable Redis at start, flag mistakes, and a served session whose mailboxes
// outlive the server because they are in Redis.
import test from 'ava';
import { closedPort, runCli } from '../helpers/cli.js';
import { compose, LineClient } from '../helpers/line-client.js';
import { redisTest, redisUrl, useRedisServer } from '../helpers/redis.js';
import { serveProcess } from '../helpers/serve-process.js';
import { uniqueName } from '../helpers/server.js';

const server = useRedisServer();
const redisOnly = redisTest();

test('an unreachable Redis at start: a clear error and exit 1, no stack', async (t) => {
  const port = await closedPort();
  for (const args of [['--redis', `redis://127.0.0.1:${port}`], ['--redis-cluster', `127.0.0.1:${port}`]]) {
    const result = await runCli(t, ['serve', '--port', '0', '--shards', '1', ...args]);
    t.is(result.code, 1, result.stderr);
    t.regex(result.stderr, new RegExp(`cannot reach Redis at (redis://|cluster )127\\.0\\.0\\.1:${port}`));
    t.notRegex(result.stderr, /\n\s+at /, 'no stack trace');
    t.notRegex(result.stdout, /listening/);
  }
});

test('Redis flag mistakes are usage errors: exit 2, naming the flag', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--redis', 'redis://127.0.0.1:1', '--memory'], /--redis and --redis-cluster keep mailboxes in Redis/],
    [['--redis', 'redis://127.0.0.1:1', '--data-dir', 'x'], /drop --memory, --data-dir and --fsync/],
    [['--redis', 'redis://127.0.0.1:1', '--redis-cluster', '127.0.0.1:2'], /exclude each other/],
    [['--redis-wait', '1'], /--redis-wait and --redis-wait-timeout need --redis or --redis-cluster/],
    [['--redis', '127.0.0.1:6379'], /redis\.url/],
    [['--redis-cluster', '127.0.0.1'], /redis\.cluster node/],
    [['--redis', 'redis://127.0.0.1:1', '--redis-wait', 'x'], /--redis-wait must be a whole number/],
  ];
  for (const [args, message] of cases) {
    const result = await runCli(t, ['serve', ...args]);
    t.is(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
    t.regex(result.stderr, message, args.join(' '));
  }
});

test('serve --help documents the Redis flags', async (t) => {
  const { stdout } = await runCli(t, ['serve', '--help']);
  for (const flag of ['--redis URL', '--redis-cluster HOST:PORT', '--redis-wait N', '--redis-wait-timeout MS']) t.true(stdout.includes(flag), flag);
});

redisOnly('serve --redis: messages outlive the server, and a second server sees them', async (t) => {
  const url = redisUrl(server());
  const bob = uniqueName('bob');
  const alice = uniqueName('alice');
  const first = await serveProcess(t, ['--redis', url, '--shards', '2']);
  await t.notThrowsAsync(first.waitForStderr(new RegExp(`mailboxes stored in Redis at ${url.replace(/\./g, '\\.')}`)));
  const sender = await LineClient.connect(first.port);
  t.teardown(() => sender.destroy());
  await sender.send(`LOGIN ${bob}\n`);
  await sender.send(Buffer.concat([compose(alice, 'kept in Redis'), compose(alice, 'bytes \u00e9\u00ff')]));
  t.deepEqual(await sender.lines(3), ['0', 'MESSAGE SENT', 'MESSAGE SENT']);
  await first.kill();

  const second = await serveProcess(t, ['--redis', url, '--shards', '0']);
  const reader = await LineClient.connect(second.port);
  t.teardown(() => reader.destroy());
  await reader.send(`LOGIN ${alice}\nREAD\nREAD\nREAD\n`);
  t.deepEqual(await reader.lines(6), ['2', bob, 'kept in Redis', bob, 'bytes \u00e9\u00ff', 'READ ERROR']);
});
