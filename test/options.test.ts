import { availableParallelism, totalmem } from 'node:os';
import test from 'ava';
import { InvalidOptionError } from '../lib/errors.js';
import { consoleLogger, silentLogger, type Logger } from '../lib/logger.js';
import {
  DEFAULT_LINE_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS_PER_IP,
  DEFAULT_MAX_LINE_BUFFER_BYTES,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_IN_FLIGHT,
  DEFAULT_MAX_LINE_BYTES,
  DEFAULT_MAX_MESSAGES_PER_USER,
  type ServerOptions,
  defaultMaxConnections,
  defaultMemoryStoreBytes,
  defaultShardCount,
  resolveOptions,
} from '../lib/options.js';
import { createServer } from '../lib/server.js';

const INVALID = { instanceOf: InvalidOptionError, code: 'PH_ERR_OPTION_INVALID' } as const;
const UNKNOWN = { instanceOf: InvalidOptionError, code: 'PH_ERR_OPTION_UNKNOWN' } as const;

/** Lets a test hand resolveOptions() what a JavaScript caller (or a CLI) might. */
const untyped = (value: unknown): ServerOptions => value as ServerOptions;

test('defaults', (t) => {
  const expected = {
    shards: Math.max(1, availableParallelism() - 1),
    // The thread that calls listen() accepts alone.
    acceptors: 1,
    maxMessagesPerUser: 1024,
    maxLineBytes: 65_536,
    idleTimeoutMs: 300_000,
    maxInFlight: 1024,
    // Mailboxes in memory unless a data directory is given, capped at a quarter of memory.
    dataDir: undefined,
    fsync: false,
    maxStoreBytes: defaultMemoryStoreBytes(),
    minFreeDiskBytes: undefined,
    maxConnections: defaultMaxConnections(),
    maxConnectionsPerIp: 256,
    maxConnectionRatePerIp: 256,
    lineTimeoutMs: 60_000,
    maxLineBufferBytes: 64 * 1024 * 1024,
    maxReplyBufferBytes: 256 * 1024 * 1024,
    shardTransport: 'ring',
    logger: consoleLogger,
    // Plain TCP unless certificates are given.
    tls: null,
  };
  t.deepEqual(resolveOptions(), expected);
  t.deepEqual(resolveOptions({}), expected);
  t.is(resolveOptions().logger, consoleLogger);
});

test('the documented default constants', (t) => {
  t.is(defaultShardCount(), Math.max(1, availableParallelism() - 1));
  t.true(defaultShardCount() >= 1);
  t.is(DEFAULT_MAX_MESSAGES_PER_USER, 1024);
  t.is(DEFAULT_MAX_LINE_BYTES, 65_536);
  t.is(DEFAULT_IDLE_TIMEOUT_MS, 300_000);
  t.is(DEFAULT_MAX_IN_FLIGHT, 1024);
  t.is(DEFAULT_MAX_CONNECTIONS_PER_IP, 256);
  t.is(DEFAULT_LINE_TIMEOUT_MS, 60_000);
  t.is(DEFAULT_MAX_LINE_BUFFER_BYTES, 64 * 1024 * 1024);
  t.true(defaultMemoryStoreBytes() > 0 && defaultMemoryStoreBytes() <= totalmem() / 4);
});

test('a durable store has no size cap unless asked; memory has one by default', (t) => {
  t.is(resolveOptions({ dataDir: 'd' }).maxStoreBytes, undefined);
  t.is(resolveOptions({}).maxStoreBytes, defaultMemoryStoreBytes());
  t.is(resolveOptions({ maxStoreBytes: 1024 * 1024 }).maxStoreBytes, 1024 * 1024, 'memory takes a cap too');
});

test('maxLineBufferBytes must exceed maxLineBytes, or one long line would be refused', (t) => {
  t.regex(t.throws(() => resolveOptions({ maxLineBytes: 1000, maxLineBufferBytes: 1000 }), INVALID)?.message ?? '', /maxLineBufferBytes.*maxLineBytes/);
  t.is(resolveOptions({ maxLineBytes: 1000, maxLineBufferBytes: 1001 }).maxLineBufferBytes, 1001);
});

test('given values are kept; an explicit undefined means the default', (t) => {
  const logger: Logger = { info() {}, warn() {}, error() {} };
  const given = {
    shards: 3,
    acceptors: 2,
    maxMessagesPerUser: 5,
    maxLineBytes: 1000,
    idleTimeoutMs: 10,
    maxInFlight: 2,
    dataDir: '/var/lib/pigeonhole',
    fsync: true,
    maxStoreBytes: 1024 * 1024,
    minFreeDiskBytes: 5_000_000,
    maxConnections: 10,
    maxConnectionsPerIp: 0,
    maxConnectionRatePerIp: 0,
    lineTimeoutMs: 1000,
    maxLineBufferBytes: 1_000_000,
    maxReplyBufferBytes: 20_000_000,
    shardTransport: 'port' as const,
    logger,
  };
  t.deepEqual(resolveOptions(given), { ...given, tls: null });
  t.deepEqual(resolveOptions({ tls: { certFile: 'c.pem', key: 'KEY', caFile: 'ca.pem' } }).tls, {
    cert: { file: 'c.pem' },
    key: { pem: 'KEY' },
    ca: { file: 'ca.pem' },
    passphrase: undefined,
  });
  t.is(resolveOptions({ shards: undefined }).shards, defaultShardCount());
  t.is(resolveOptions({ logger: silentLogger }).logger, silentLogger);
});

test('maxReplyBufferBytes: each acceptor thread\'s share must exceed what one connection may hold; the default grows to twice that per thread', (t) => {
  const one = 4 * 1024 * 1024 + 65_536 + 258;
  t.is(resolveOptions({}).maxReplyBufferBytes, 256 * 1024 * 1024);
  t.is(resolveOptions({ shards: 1, acceptors: 64 }).maxReplyBufferBytes, 64 * 2 * one);
  t.is(resolveOptions({ maxLineBytes: 16 * 1024 * 1024 }).maxReplyBufferBytes, 256 * 1024 * 1024);
  t.is(resolveOptions({ maxReplyBufferBytes: one + 1 }).maxReplyBufferBytes, one + 1);
  t.throws(() => resolveOptions({ maxReplyBufferBytes: one }), { code: 'PH_ERR_OPTION_INVALID', message: /must exceed what one connection may hold/ });
  t.throws(() => resolveOptions({ shards: 1, acceptors: 2, maxReplyBufferBytes: 2 * one }), { code: 'PH_ERR_OPTION_INVALID', message: /each of the 2 acceptor threads' equal share/ });
});

test('the edges of every range are accepted', (t) => {
  t.is(resolveOptions({ shards: 0 }).shards, 0);
  t.is(resolveOptions({ shards: 256 }).shards, 256);
  t.is(resolveOptions({ maxMessagesPerUser: 1 }).maxMessagesPerUser, 1);
  t.is(resolveOptions({ maxMessagesPerUser: 2 ** 32 - 1 }).maxMessagesPerUser, 2 ** 32 - 1);
  // `COMPOSE ` and a 256-byte name must fit.
  t.is(resolveOptions({ maxLineBytes: 264 }).maxLineBytes, 264);
  t.is(resolveOptions({ maxLineBytes: 16 * 1024 * 1024 }).maxLineBytes, 16 * 1024 * 1024);
  t.is(resolveOptions({ idleTimeoutMs: 0 }).idleTimeoutMs, 0);
  t.is(resolveOptions({ idleTimeoutMs: 2 ** 31 - 1 }).idleTimeoutMs, 2 ** 31 - 1);
  t.is(resolveOptions({ maxInFlight: 1 }).maxInFlight, 1);
  t.is(resolveOptions({ maxInFlight: 1_000_000 }).maxInFlight, 1_000_000);
  t.is(resolveOptions({ dataDir: 'd', maxStoreBytes: 64 * 1024 }).maxStoreBytes, 64 * 1024);
  t.is(resolveOptions({ dataDir: 'd', maxStoreBytes: Number.MAX_SAFE_INTEGER }).maxStoreBytes, Number.MAX_SAFE_INTEGER);
  t.is(resolveOptions({ fsync: false }).fsync, false, 'fsync: false needs no dataDir');
});

const NOT_INTEGERS: unknown[] = [1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, '2', null, true, {}, [], 2n];

// Values are tried together with a dataDir, so that only the value itself can be wrong.
// redis has its own checks: test/store/redis/options.test.ts.
const BAD_VALUES: Record<Exclude<keyof ServerOptions, 'logger' | 'redis'>, unknown[]> = {
  shards: [-1, 257, ...NOT_INTEGERS],
  acceptors: [0, -1, 65, ...NOT_INTEGERS],
  maxMessagesPerUser: [0, -1, 2 ** 32, ...NOT_INTEGERS],
  maxLineBytes: [0, 263, 16 * 1024 * 1024 + 1, ...NOT_INTEGERS],
  idleTimeoutMs: [-1, 2 ** 31, ...NOT_INTEGERS],
  maxInFlight: [0, -5, 1_000_001, ...NOT_INTEGERS],
  maxStoreBytes: [0, 64 * 1024 - 1, Number.MAX_SAFE_INTEGER + 1, ...NOT_INTEGERS],
  minFreeDiskBytes: [-1, Number.MAX_SAFE_INTEGER + 1, ...NOT_INTEGERS],
  maxConnections: [0, -1, 10_000_001, ...NOT_INTEGERS],
  maxConnectionsPerIp: [-1, 10_000_001, ...NOT_INTEGERS],
  maxConnectionRatePerIp: [-1, 10_000_001, ...NOT_INTEGERS],
  lineTimeoutMs: [-1, 2 ** 31, ...NOT_INTEGERS],
  maxLineBufferBytes: [0, 264, Number.MAX_SAFE_INTEGER + 1, ...NOT_INTEGERS],
  maxReplyBufferBytes: [0, 1024 * 1024 - 1, Number.MAX_SAFE_INTEGER + 1, ...NOT_INTEGERS],
  dataDir: ['', 42, true, {}, null],
  fsync: ['yes', 1, 0, 'true', {}],
  tls: ['yes', 42, null, true, {}, { cert: 'c' }, { key: 'k' }, { cert: 1, key: 'k' }, { certFile: '', key: 'k' }, { cert: 'c', certFile: 'f', key: 'k' }, { cert: 'c', key: 'k', ca: [] }, { cert: 'c', key: 'k', passphrase: 7 }],
  shardTransport: ['rings', 'Port', '', 1, null, {}],
};

for (const [name, values] of Object.entries(BAD_VALUES)) {
  test(`a bad ${name} throws PH_ERR_OPTION_INVALID naming it`, (t) => {
    for (const value of values) {
      const options = name === 'dataDir' ? { dataDir: value } : { dataDir: 'data', [name]: value };
      const err = t.throws(() => resolveOptions(untyped(options)), INVALID, `${name}: ${String(value)}`);
      t.true(err?.message.includes(name), err?.message);
      t.is(err?.name, 'InvalidOptionError');
    }
  });
}

test('acceptors: 1 by default, up to 64 with worker shards; more than 1 needs shards and a line buffer share above maxLineBytes', (t) => {
  t.is(resolveOptions({}).acceptors, 1);
  t.is(resolveOptions({ shards: 0 }).acceptors, 1, 'one acceptor works with inline shards');
  t.is(resolveOptions({ acceptors: 2, shards: 1 }).acceptors, 2);
  t.is(resolveOptions({ acceptors: 64, shards: 1 }).acceptors, 64);
  t.regex(t.throws(() => resolveOptions({ acceptors: 2, shards: 0 }), INVALID)?.message ?? '', /acceptors.*shards >= 1/);
  // 4 threads, each 1 MiB of a 4 MiB budget: not above a 1 MiB line.
  t.regex(t.throws(() => resolveOptions({ acceptors: 4, shards: 1, maxLineBytes: 1024 * 1024, maxLineBufferBytes: 4 * 1024 * 1024 }), INVALID)?.message ?? '', /maxLineBufferBytes.*4 acceptor threads.*share/);
  t.is(resolveOptions({ acceptors: 4, shards: 1, maxLineBytes: 1024 * 1024, maxLineBufferBytes: 4 * 1024 * 1024 + 4 }).acceptors, 4);
});

test('fsync and minFreeDiskBytes without dataDir throw PH_ERR_OPTION_INVALID naming them', (t) => {
  t.regex(t.throws(() => resolveOptions({ fsync: true }), INVALID)?.message ?? '', /fsync.*dataDir/);
  t.regex(t.throws(() => resolveOptions({ minFreeDiskBytes: 1024 * 1024 }), INVALID)?.message ?? '', /minFreeDiskBytes.*dataDir/);
});

test('a logger without info/warn/error throws PH_ERR_OPTION_INVALID naming it', (t) => {
  for (const logger of [{}, { info() {}, warn() {} }, { info() {}, warn() {}, error: 'no' }, 'stderr', 42]) {
    const err = t.throws(() => resolveOptions(untyped({ logger })), INVALID, JSON.stringify(logger));
    t.regex(err?.message ?? '', /logger/);
  }
});

test('an unknown tls option throws PH_ERR_OPTION_UNKNOWN with the closest name', (t) => {
  const err = t.throws(() => resolveOptions(untyped({ tls: { cert: 'c', key: 'k', caFiles: 'x' } })), UNKNOWN);
  t.regex(err?.message ?? '', /'caFiles'.*did you mean 'caFile'/);
});

test('options that are not an object throw PH_ERR_OPTION_INVALID', (t) => {
  for (const options of [null, 'shards=2', 4, true]) t.throws(() => resolveOptions(untyped(options)), INVALID, String(options));
});

test('an unknown option throws PH_ERR_OPTION_UNKNOWN naming it and suggesting the right one', (t) => {
  const err = t.throws(() => resolveOptions(untyped({ shard: 2 })), UNKNOWN);
  t.regex(err?.message ?? '', /'shard'/);
  t.regex(err?.message ?? '', /did you mean 'shards'/);
});

test('more typos get a suggestion', (t) => {
  const cases: [string, string][] = [
    // The limit is called idleTimeout in prose; the option carries its unit.
    ['idleTimeout', 'idleTimeoutMs'],
    ['maxMessages', 'maxMessagesPerUser'],
    ['maxLineLength', 'maxLineBytes'],
    ['maxInflight', 'maxInFlight'],
    ['Shards', 'shards'],
    ['dataDirectory', 'dataDir'],
    ['maxStoreSize', 'maxStoreBytes'],
  ];
  for (const [typo, meant] of cases) {
    const err = t.throws(() => resolveOptions(untyped({ [typo]: 1 })), UNKNOWN, typo);
    t.true(err?.message.includes(`'${meant}'`), `${typo}: ${err?.message}`);
  }
});

test('an unknown option with nothing close names it without a guess', (t) => {
  const err = t.throws(() => resolveOptions(untyped({ colour: 'blue' })), UNKNOWN);
  t.regex(err?.message ?? '', /'colour'/);
  t.notRegex(err?.message ?? '', /did you mean/);
});

test('an unknown option is refused even next to good ones', (t) => {
  t.throws(() => resolveOptions(untyped({ shards: 2, maxLineBytes: 1000, port: 4000 })), UNKNOWN);
});

function messagePorts(): number {
  return process.getActiveResourcesInfo().filter((kind) => kind === 'MessagePort').length;
}

test('createServer with bad options throws synchronously, before any shard thread exists', (t) => {
  const ports = messagePorts();
  const bad: [unknown, typeof INVALID | typeof UNKNOWN][] = [
    [{ shards: -1 }, INVALID],
    [{ shards: 2, maxLineBytes: 10 }, INVALID],
    [{ shards: 2, maxMessagesPerUser: 0 }, INVALID],
    [{ shards: 2, logger: {} }, INVALID],
    [{ shard: 2 }, UNKNOWN],
    [{ shards: 2, port: 4000 }, UNKNOWN],
  ];
  for (const [options, expectation] of bad) {
    let server: ReturnType<typeof createServer> | undefined;
    // t.throws calls synchronously: a rejected promise or a later 'error' would not count.
    t.throws(() => {
      server = createServer(untyped(options));
    }, expectation, JSON.stringify(options));
    t.is(server, undefined);
  }
  // A worker shard holds a MessagePort to the acceptor; none may have been opened.
  t.is(messagePorts(), ports);
});

test('listen() refuses a bad port or host with PH_ERR_OPTION_INVALID, and an unknown option name', async (t) => {
  const server = createServer({ shards: 0, logger: silentLogger });
  t.teardown(() => server.close());
  for (const port of [-1, 65_536, 1.5, Number.NaN]) {
    const err = await t.throwsAsync(server.listen({ port, host: '127.0.0.1' }), INVALID, String(port));
    t.regex(err?.message ?? '', /port/);
  }
  const err = await t.throwsAsync(server.listen({ port: 0, host: '' }), INVALID);
  t.regex(err?.message ?? '', /host/);
  // A wrong name would otherwise fall back to the default silently.
  const typo = await t.throwsAsync(server.listen({ port: 0, hostname: '127.0.0.1' } as never), { code: 'PH_ERR_OPTION_UNKNOWN' });
  t.regex(typo?.message ?? '', /listen\(\) option 'hostname', did you mean 'host'/);
  t.is(server.address, null);
});
