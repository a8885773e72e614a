// Fairness under heavy pipelining: how long one user's COMPOSE+READ round trip takes
// while N other connections each keep DEPTH pairs of big COMPOSE+READ in flight, against
// pigeonhole and against Redis (RPUSH+LPOP) in the same run.
//
//   npm run bench:fairness -- [--attackers 4,16,64] [--message-bytes 65536] [--depth 8]
//                             [--duration 3] [--shards 2] [--no-redis] [--json FILE]
//
// The user sends one pair at a time, 5 ms apart, as an interactive client would; every
// reply it gets is checked. Heavy connections read and write their own mailbox (the
// READ after each COMPOSE finds the message just stored), so the store stays small and
// every pair is real work. pigeonhole runs compiled (dist/) in a process of its own,
// Redis with persistence off.
import { writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { type Socket, connect } from 'node:net';
import { createHistogram } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { integerFlag } from '../lib/cli/flags.js';
import { MAX_SHARDS } from '../lib/options.js';
import { describeMachine, formatMachine } from './machine.js';
import { RedisProcess, findRedisServer, redisVersion } from './redis.js';
import { startServe } from './serve-process.js';

const USAGE = 'Usage: npm run bench:fairness -- [--attackers 4,16,64] [--message-bytes N] [--depth N] [--duration SECONDS] [--shards N] [--no-redis] [--json FILE]';
const VICTIM_PAUSE_MS = 5;
// Heavy connections start before the user is timed, so it meets them at full flow.
const RAMP_MS = 500;
// A round trip that takes longer than this ends the run: the server is not serving.
const ROUND_TRIP_TIMEOUT_MS = 10_000;

const { values } = parseArgs({
  options: {
    attackers: { type: 'string', default: '4,16,64' },
    'message-bytes': { type: 'string', default: '65536' },
    depth: { type: 'string', default: '8' },
    duration: { type: 'string', default: '3' },
    shards: { type: 'string', default: '2' },
    'no-redis': { type: 'boolean', default: false },
    json: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const attackerCounts = (values.attackers ?? '').split(',').map((n) => integerFlag('attackers', n, 1, 1_000) as number);
const messageBytes = integerFlag('message-bytes', values['message-bytes'], 1, 1_000_000) as number;
const depth = integerFlag('depth', values.depth, 1, 1_024) as number;
const durationMs = (integerFlag('duration', values.duration, 1, 600) as number) * 1000;
const shards = integerFlag('shards', values.shards, 0, MAX_SHARDS) as number;
const body = 'x'.repeat(messageBytes);

/** How to speak to a server: a pair is a store and a read of the same mailbox, 3 reply lines in both protocols. */
interface Dialect {
  readonly name: string;
  readonly port: number;
  greeting(user: string): string;
  pair(user: string, text: string): string;
  /** The pair's three reply lines, as they should be. */
  answer(user: string, text: string): string[];
}

const pigeonholeDialect = (port: number): Dialect => ({
  name: shards === 0 ? 'pigeonhole, inline' : `pigeonhole, ${shards} shards`,
  port,
  greeting: (user) => `LOGIN ${user}\n`,
  pair: (user, text) => `COMPOSE ${user}\n${text}\nREAD\n`,
  answer: (user, text) => ['MESSAGE SENT', user, text],
});

const bulk = (word: string): string => `$${Buffer.byteLength(word)}\r\n${word}\r\n`;
const redisDialect = (port: number, version: string): Dialect => ({
  name: `Redis ${version}`.trim(),
  port,
  greeting: () => '',
  pair: (user, text) => `*3\r\n${bulk('RPUSH')}${bulk(user)}${bulk(text)}*2\r\n${bulk('LPOP')}${bulk(user)}`,
  answer: (_user, text) => [':1', `$${Buffer.byteLength(text)}`, text],
});

async function open(port: number): Promise<Socket> {
  const socket = connect({ port, host: '127.0.0.1', noDelay: true });
  await once(socket, 'connect');
  return socket;
}

/** Counts reply lines (LFs) as they come. */
function lineCounter(socket: Socket, onLines: (lines: number) => void): void {
  socket.on('data', (chunk: Buffer) => {
    let lines = 0;
    for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) lines++;
    if (lines > 0) onLines(lines);
  });
}

/** A heavy connection: keeps `depth` to 2 × `depth` pairs in flight until stopped; resolves with the pairs answered. */
async function heavy(dialect: Dialect, user: string, stopped: () => boolean): Promise<number> {
  const socket = await open(dialect.port);
  const greeting = dialect.greeting(user);
  const chunk = Buffer.from(dialect.pair(user, body).repeat(depth));
  let skip = greeting === '' ? 0 : 1;
  let lines = 0;
  let pairs = 0;
  let sentPairs = 2 * depth;
  await new Promise<void>((resolve) => {
    lineCounter(socket, (n) => {
      const counted = Math.min(skip, n);
      skip -= counted;
      lines += n - counted;
      pairs = Math.floor(lines / 3);
      // Another chunk each time a chunk's worth is answered, until stopped; then wait for the rest.
      while (!stopped() && sentPairs - pairs <= depth) {
        socket.write(chunk);
        sentPairs += depth;
      }
      if (stopped() && pairs === sentPairs) resolve();
    });
    socket.on('close', () => resolve());
    socket.on('error', () => resolve());
    socket.write(greeting);
    socket.write(chunk);
    socket.write(chunk);
  });
  socket.destroy();
  return pairs;
}

/** The user: one pair at a time for `ms`, each reply checked; latency of each round trip. */
async function user(dialect: Dialect, name: string, ms: number): Promise<{ roundTrips: number; p50: number; p99: number; max: number }> {
  const socket = await open(dialect.port);
  const histogram = createHistogram();
  let pending = '';
  let waiting: { lines: number; resolve: (lines: string[]) => void } | null = null;
  const got: string[] = [];
  socket.on('data', (chunk: Buffer) => {
    pending += chunk.toString('latin1');
    let lf = pending.indexOf('\n');
    while (lf !== -1) {
      got.push(pending.slice(0, lf).replace(/\r$/, ''));
      pending = pending.slice(lf + 1);
      lf = pending.indexOf('\n');
    }
    if (waiting !== null && got.length >= waiting.lines) {
      const { resolve, lines } = waiting;
      waiting = null;
      resolve(got.splice(0, lines));
    }
  });
  const ask = async (text: string, lines: number): Promise<string[]> => {
    const replies = new Promise<string[]>((resolve) => (waiting = { lines, resolve }));
    socket.write(text);
    const timeout = sleep(ROUND_TRIP_TIMEOUT_MS).then(() => null);
    const answered = await Promise.race([replies, timeout]);
    if (answered === null) throw new Error(`${dialect.name}: no answer within ${ROUND_TRIP_TIMEOUT_MS} ms`);
    return answered;
  };
  try {
    const greeting = dialect.greeting(name);
    if (greeting !== '') await ask(greeting, 1);
    const end = performance.now() + ms;
    for (let i = 0; performance.now() < end; i++) {
      const text = `hello ${i}`;
      const started = performance.now();
      const replies = await ask(dialect.pair(name, text), 3);
      histogram.record(Math.max(1, Math.round((performance.now() - started) * 1000)));
      const expected = dialect.answer(name, text);
      if (replies.join('\n') !== expected.join('\n')) throw new Error(`${dialect.name}: the user got ${JSON.stringify(replies)}, not ${JSON.stringify(expected)}`);
      await sleep(VICTIM_PAUSE_MS);
    }
  } finally {
    socket.destroy();
  }
  const ms3 = (us: number): number => Math.round(us / 100) / 10;
  return { roundTrips: histogram.count, p50: ms3(histogram.percentile(50)), p99: ms3(histogram.percentile(99)), max: ms3(histogram.max) };
}

interface Row {
  readonly server: string;
  readonly attackers: number;
  readonly roundTrips: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly heavyPairsPerSecond: number;
}

async function measure(dialect: Dialect, attackers: number, run: number): Promise<Row> {
  let stop = false;
  const heavies = Array.from({ length: attackers }, (_, i) => heavy(dialect, `heavy${run}-${i}`, () => stop));
  await sleep(RAMP_MS);
  const started = performance.now();
  let timed: Awaited<ReturnType<typeof user>>;
  try {
    timed = await user(dialect, `user${run}`, durationMs);
  } finally {
    stop = true;
  }
  const seconds = (performance.now() - started) / 1000;
  const pairs = (await Promise.all(heavies)).reduce((a, b) => a + b, 0);
  return { server: dialect.name, attackers, roundTrips: timed.roundTrips, p50Ms: timed.p50, p99Ms: timed.p99, maxMs: timed.max, heavyPairsPerSecond: Math.round(pairs / (seconds + RAMP_MS / 1000)) };
}

const rows: Row[] = [];
console.log(`bench:fairness, ${new Date().toISOString()}`);
console.log(`machine: ${formatMachine(describeMachine())}`);
console.log(`load: heavy connections each keep ${depth}-${2 * depth} pairs of ${messageBytes}-byte COMPOSE+READ in flight; one user sends a pair every ${VICTIM_PAUSE_MS} ms for ${durationMs / 1000} s`);

const served = await startServe(['--memory', '--shards', String(shards)]);
try {
  const dialect = pigeonholeDialect(served.port);
  for (const [i, attackers] of attackerCounts.entries()) rows.push(await measure(dialect, attackers, i));
} finally {
  await served.stop();
}
const binary = values['no-redis'] ? null : findRedisServer();
if (binary === null && !values['no-redis']) console.log('Redis: skipped, redis-server is not on PATH');
if (binary !== null) {
  const redis = await RedisProcess.start(binary);
  try {
    const dialect = redisDialect(redis.port, redisVersion(binary) ?? '');
    for (const [i, attackers] of attackerCounts.entries()) rows.push(await measure(dialect, attackers, i));
  } finally {
    await redis.stop();
  }
}

console.log('\n| server | heavy connections | user round trips | p50 ms | p99 ms | max ms | heavy pairs/s |');
console.log('| --- | --: | --: | --: | --: | --: | --: |');
for (const row of rows) {
  console.log(`| ${row.server} | ${row.attackers} | ${row.roundTrips} | ${row.p50Ms} | ${row.p99Ms} | ${row.maxMs} | ${row.heavyPairsPerSecond.toLocaleString('en-US')} |`);
}
if (values.json !== undefined) writeFileSync(values.json, `${JSON.stringify({ messageBytes, depth, durationMs, shards, rows }, null, 2)}\n`);
