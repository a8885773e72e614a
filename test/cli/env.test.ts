import test from 'ava';
import { blameEnvironment, envName, withEnvironment } from '../../lib/cli/env.js';
import { UsageError, integerFlag } from '../../lib/cli/flags.js';
import { SERVE_FLAGS, STORAGE_CHOICES, serve } from '../../lib/cli/serve.js';

type Values = Record<string, string | boolean | undefined>;
const none: Values = {};

test('every serve flag but --help can come from PIGEONHOLE_<FLAG>', (t) => {
  const env: NodeJS.ProcessEnv = {};
  const expected: Record<string, string | boolean> = {};
  for (const [flag, { type }] of Object.entries(SERVE_FLAGS)) {
    if (flag === 'help') continue;
    env[envName(flag)] = type === 'boolean' ? 'yes' : `value of ${flag}`;
    expected[flag] = type === 'boolean' ? true : `value of ${flag}`;
  }
  env[envName('help')] = '1';
  const { values, fromEnv, unknown } = withEnvironment(none, SERVE_FLAGS, env);
  t.deepEqual(values, expected);
  t.deepEqual([...fromEnv].sort(), Object.keys(expected).sort());
  t.deepEqual(unknown, []);
  t.is(envName('data-dir'), 'PIGEONHOLE_DATA_DIR');
  t.is(envName('tls-cert'), 'PIGEONHOLE_TLS_CERT');
});

test('a flag on the command line wins over the environment', (t) => {
  const { values, fromEnv } = withEnvironment<Values>({ port: '4001', fsync: true }, SERVE_FLAGS, { PIGEONHOLE_PORT: '5000', PIGEONHOLE_FSYNC: 'no', PIGEONHOLE_SHARDS: '3' });
  t.is(values.port, '4001');
  t.is(values.fsync, true);
  t.is(values.shards, '3');
  t.deepEqual(fromEnv, ['shards']);
});

test('where mailboxes are kept, chosen on the command line, wins over another choice in the environment', (t) => {
  const env = {
    PIGEONHOLE_MEMORY: '1',
    PIGEONHOLE_DATA_DIR: '/env/data',
    PIGEONHOLE_FSYNC: 'yes',
    PIGEONHOLE_MIN_FREE_DISK: '8M',
    PIGEONHOLE_MAX_STORE_BYTES: '1G',
    PIGEONHOLE_REDIS_CLUSTER: 'a:7000',
    PIGEONHOLE_REDIS_WAIT: '1',
    PIGEONHOLE_SHARDS: '3',
  };
  const memory = withEnvironment<Values>({ memory: true }, SERVE_FLAGS, env, STORAGE_CHOICES);
  t.like(memory.values, { memory: true, 'data-dir': undefined, fsync: undefined, 'min-free-disk': undefined, 'redis-cluster': undefined, 'redis-wait': undefined, 'max-store-bytes': '1G', shards: '3' });
  t.deepEqual([...memory.setAside].sort(), ['PIGEONHOLE_DATA_DIR', 'PIGEONHOLE_FSYNC', 'PIGEONHOLE_MIN_FREE_DISK', 'PIGEONHOLE_REDIS_CLUSTER', 'PIGEONHOLE_REDIS_WAIT']);
  // A way's own flags still come from the environment.
  const disk = withEnvironment<Values>({ 'data-dir': '/cli/data' }, SERVE_FLAGS, env, STORAGE_CHOICES);
  t.like(disk.values, { memory: undefined, 'data-dir': '/cli/data', fsync: true, 'min-free-disk': '8M', 'max-store-bytes': '1G', 'redis-cluster': undefined });
  const redis = withEnvironment<Values>({ redis: 'redis://127.0.0.1:6379' }, SERVE_FLAGS, env, STORAGE_CHOICES);
  t.like(redis.values, { memory: undefined, 'data-dir': undefined, fsync: undefined, 'min-free-disk': undefined, 'max-store-bytes': undefined, 'redis-cluster': undefined, 'redis-wait': '1' });
  // A flag that only belongs to a way does not choose it: --fsync leaves Redis from the
  // environment standing (and the conflict is the user's to see).
  const fsyncOnly = withEnvironment<Values>({ fsync: true }, SERVE_FLAGS, { PIGEONHOLE_REDIS: 'redis://127.0.0.1:6379' }, STORAGE_CHOICES);
  t.like(fsyncOnly.values, { fsync: true, redis: 'redis://127.0.0.1:6379' });
  t.deepEqual(fsyncOnly.setAside, []);
  // No choice on the command line: the environment's stands, conflicts and all.
  const none_ = withEnvironment<Values>(none, SERVE_FLAGS, { PIGEONHOLE_MEMORY: '1', PIGEONHOLE_DATA_DIR: '/env/data' }, STORAGE_CHOICES);
  t.like(none_.values, { memory: true, 'data-dir': '/env/data' });
  t.deepEqual(none_.setAside, []);
});

test('switches take 1/true/yes/on and 0/false/no/off; anything else is a usage error naming the variable', (t) => {
  for (const word of ['1', 'true', 'YES', 'on']) t.is(withEnvironment(none, SERVE_FLAGS, { PIGEONHOLE_MEMORY: word }).values.memory, true, word);
  for (const word of ['0', 'false', 'No', 'off', '']) t.is(withEnvironment(none, SERVE_FLAGS, { PIGEONHOLE_MEMORY: word }).values.memory, undefined, word);
  const err = t.throws(() => withEnvironment(none, SERVE_FLAGS, { PIGEONHOLE_FSYNC: 'maybe' }), { instanceOf: UsageError });
  t.regex(err?.message ?? '', /^PIGEONHOLE_FSYNC must be .*got 'maybe'$/);
});

test('PIGEONHOLE_* variables that are no flag are reported; a bad value from the environment says where it came from', (t) => {
  const { unknown } = withEnvironment(none, SERVE_FLAGS, { PIGEONHOLE_PROT: '1', PIGEONHOLE_PORT: '1', HOME: '/root' });
  t.deepEqual(unknown, ['PIGEONHOLE_PROT']);
  const err = (() => {
    try {
      integerFlag('port', 'abc', 0, 65_535);
    } catch (e) {
      return e;
    }
  })();
  t.regex((blameEnvironment(err, ['port']) as Error).message, /--port must be a whole number, got 'abc' \(from PIGEONHOLE_PORT in the environment\)$/);
  t.is(blameEnvironment(err, ['host']), err, 'not from the environment: unchanged');
  t.is(blameEnvironment(err, ['port-range']), err, 'a flag whose name only starts the same is another flag');
});

test('a value only createServer() refuses names its flags, and the variable it came from', async (t) => {
  // 1K passes --max-line-buffer's own range, but is no more than the longest line allowed.
  const fromEnv = await t.throwsAsync(serve([], { PIGEONHOLE_MEMORY: '1', PIGEONHOLE_MAX_LINE_BUFFER: '1K' }), { instanceOf: UsageError });
  t.regex(fromEnv?.message ?? '', /^invalid maxLineBufferBytes: .*\(--max-line-buffer, --max-line\) \(from PIGEONHOLE_MAX_LINE_BUFFER in the environment\)$/);
  // Both values from the environment: both variables are named.
  const both = await t.throwsAsync(serve([], { PIGEONHOLE_MEMORY: '1', PIGEONHOLE_MAX_LINE: '100000', PIGEONHOLE_MAX_LINE_BUFFER: '100000' }), { instanceOf: UsageError });
  t.regex(both?.message ?? '', /\(from PIGEONHOLE_MAX_LINE and PIGEONHOLE_MAX_LINE_BUFFER in the environment\)$|\(from PIGEONHOLE_MAX_LINE_BUFFER and PIGEONHOLE_MAX_LINE in the environment\)$/);
  const given = await t.throwsAsync(serve(['--redis', 'localhost:6379'], {}), { instanceOf: UsageError });
  t.regex(given?.message ?? '', /^invalid redis\.url: .*got localhost:6379 \(--redis\)$/);
});
