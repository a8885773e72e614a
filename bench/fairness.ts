// Fairness under heavy pipelining: how long one user's COMPOSE+READ round trip takes
// while N other connections each keep DEPTH pairs of big COMPOSE+READ in flight, against
// pigeonhole and against Redis (RPUSH+LPOP) in the same run. With --heavy reads, each
// heavy connection instead stocks its mailbox with --stock big messages and then drains
// it, DEPTH READs (LPOPs) deep; the user is timed while every one of them still reads.
//
//   npm run bench:fairness -- [--attackers 4,16,64] [--message-bytes 65536] [--depth 8]
//                             [--duration 3] [--shards 2] [--heavy pairs|reads]
//                             [--stock 1000] [--no-redis] [--json FILE]
//
// The user sends one pair at a time, 5 ms apart, as an interactive client would; every
// reply it gets is checked. Heavy connections read and write their own mailbox (the
// READ after each COMPOSE finds the message just stored), so the store stays small and
// every pair is real work. pigeonhole runs compiled (dist/) in a process of its own,
// Redis with persistence off.
import { writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { type Socket, connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { integerFlag } from '../lib/cli/flags.js';
import { MAX_SHARDS } from '../lib/options.js';
import { describeMachine, formatMachine } from './machine.js';
import { RedisProcess, findRedisServer, redisVersion } from './redis.js';
import { startServe } from './serve-process.js';
import { type UserDialect, type UserTimes, interactiveUser, pigeonholeUser } from './load/interactive-user.js';

const USAGE = 'Usage: npm run bench:fairness -- [--attackers 4,16,64] [--message-bytes N] [--depth N] [--duration SECONDS] [--shards N] [--heavy pairs|reads] [--stock N] [--no-redis] [--json FILE]';
// Heavy connections start before the user is timed, so it meets them at full flow.
const RAMP_MS = 500;

const { values } = parseArgs({
  options: {
    attackers: { type: 'string', default: '4,16,64' },
    'message-bytes': { type: 'string', default: '65536' },
    depth: { type: 'string', default: '8' },
    duration: { type: 'string', default: '3' },
    shards: { type: 'string', default: '2' },
    heavy: { type: 'string', default: 'pairs' },
    stock: { type: 'string', default: '1000' },
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
if (values.heavy !== 'pairs' && values.heavy !== 'reads') throw new Error(`--heavy is pairs or reads, got ${values.heavy}`);
const readsMode = values.heavy === 'reads';
const stock = integerFlag('stock', values.stock, 1, 100_000) as number;

/** How to speak to a server (see UserDialect), and where; a store answers one line, a read of a message two. */
interface Dialect extends UserDialect {
  readonly port: number;
  store(user: string, text: string): string;
  /** A store's answer (its first characters) says it was stored. */
  stored(head: string): boolean;
  read(user: string): string;
  /** A read's answer (its first line's first characters) brings a message, on one more line. */
  readHit(head: string): boolean;
}

const pigeonholeDialect = (port: number): Dialect => ({
  ...pigeonholeUser(shards === 0 ? 'pigeonhole, inline' : `pigeonhole, ${shards} shards`),
  port,
  store: (user, text) => `COMPOSE ${user}\n${text}\n`,
  stored: (head) => head === 'MESSAGE SENT',
  read: () => 'READ\n',
  // A sender's name has no space: READ ERROR is no name.
  readHit: (head) => head !== 'READ ERROR',
});

const bulk = (word: string): string => `$${Buffer.byteLength(word)}\r\n${word}\r\n`;
const redisDialect = (port: number, version: string): Dialect => ({
  name: `Redis ${version}`.trim(),
  port,
  greeting: () => '',
  pair: (user, text) => `*3\r\n${bulk('RPUSH')}${bulk(user)}${bulk(text)}*2\r\n${bulk('LPOP')}${bulk(user)}`,
  store: (user, text) => `*3\r\n${bulk('RPUSH')}${bulk(user)}${bulk(text)}`,
  stored: (head) => head.startsWith(':'),
  read: (user) => `*2\r\n${bulk('LPOP')}${bulk(user)}`,
  // $-1 (or RESP3's _) for an empty list; $N and the message otherwise.
  readHit: (head) => head.startsWith('$') && head !== '$-1',
  answer: (_user, text) => [':1', `$${Buffer.byteLength(text)}`, text],
});

async function open(port: number): Promise<Socket> {
  const socket = connect({ port, host: '127.0.0.1', noDelay: true });
  await once(socket, 'connect');
  return socket;
}

// A reply's first bytes are enough to tell what it is.
const HEAD_BYTES = 16;

/** Each reply line's first HEAD_BYTES characters (no CR), as lines complete. */
function lineHeads(socket: Socket, onLine: (head: string) => void): void {
  let head = '';
  const take = (chunk: Buffer, from: number, to: number): void => {
    if (head.length < HEAD_BYTES && from < to) head += chunk.toString('latin1', from, Math.min(to, from + HEAD_BYTES - head.length));
  };
  socket.on('data', (chunk: Buffer) => {
    let start = 0;
    for (let lf = chunk.indexOf(10); lf !== -1; lf = chunk.indexOf(10, start)) {
      take(chunk, start, lf);
      onLine(head.replace(/\r$/, ''));
      head = '';
      start = lf + 1;
    }
    take(chunk, start, chunk.length);
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
    lineHeads(socket, () => {
      if (skip > 0) {
        skip--;
        return;
      }
      pairs = Math.floor(++lines / 3);
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

// Stocking writes this many COMPOSEs at a time: one string of them all could pass V8's longest.
const STOCK_CHUNK = 64;

/**
 * A heavy reader: its mailbox stocked with `stock` messages (then `stocked()`; a store
 * refused fails the run), then drained `depth` READs deep once `go` resolves, until every
 * READ is answered; resolves with the messages read (a READ that finds the mailbox empty
 * reads none). Rejects if its connection ends first.
 */
async function heavyReader(dialect: Dialect, user: string, go: Promise<void>, stocked: () => void): Promise<number> {
  const socket = await open(dialect.port);
  const greeting = dialect.greeting(user);
  let toSkip = greeting === '' ? 0 : 1;
  let toStock = stock;
  let answered = 0;
  let read = 0;
  let inBody = false;
  let sent = 0;
  let going = false;
  const request = dialect.read(user);
  const pump = (): void => {
    let batch = '';
    while (going && sent < stock && sent - answered < depth) {
      batch += request;
      sent++;
    }
    if (batch !== '') socket.write(batch);
  };
  const done = new Promise<number>((resolve, reject) => {
    lineHeads(socket, (head) => {
      if (toSkip > 0) {
        toSkip--;
      } else if (toStock > 0) {
        if (!dialect.stored(head)) {
          socket.destroy();
          reject(new Error(`${dialect.name}: stocking ${user}'s mailbox was answered ${JSON.stringify(head)}`));
          return;
        }
        if (--toStock === 0) stocked();
      } else if (inBody) {
        inBody = false;
        read++;
      } else {
        answered++;
        inBody = dialect.readHit(head);
      }
      if (answered === stock && !inBody) resolve(read);
      else pump();
    });
    const ended = (): void => reject(new Error(`${dialect.name}: ${user}'s connection ended after ${answered} of ${stock} READs (${stock - toStock} stocked)`));
    socket.on('close', ended);
    socket.on('error', ended);
  });
  socket.write(greeting);
  for (let i = 0; i < stock; i += STOCK_CHUNK) socket.write(dialect.store(user, body).repeat(Math.min(STOCK_CHUNK, stock - i)));
  await go;
  going = true;
  pump();
  try {
    return await done;
  } finally {
    socket.destroy();
  }
}

interface Row {
  readonly server: string;
  readonly attackers: number;
  readonly roundTrips: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Pairs (or, reading, messages) the heavy connections got answered per second. */
  readonly heavyPerSecond: number;
}

async function measure(dialect: Dialect, attackers: number, run: number): Promise<Row> {
  return readsMode ? measureReads(dialect, attackers, run) : measurePairs(dialect, attackers, run);
}

async function measurePairs(dialect: Dialect, attackers: number, run: number): Promise<Row> {
  let stop = false;
  const heavies = Array.from({ length: attackers }, (_, i) => heavy(dialect, `heavy${run}-${i}`, () => stop));
  await sleep(RAMP_MS);
  const started = performance.now();
  let timed: UserTimes;
  try {
    timed = await interactiveUser(await open(dialect.port), dialect, `user${run}`, durationMs);
  } finally {
    stop = true;
  }
  const seconds = (performance.now() - started) / 1000;
  const pairs = (await Promise.all(heavies)).reduce((a, b) => a + b, 0);
  return { server: dialect.name, attackers, roundTrips: timed.roundTrips, p50Ms: timed.p50, p99Ms: timed.p99, maxMs: timed.max, heavyPerSecond: Math.round(pairs / (seconds + RAMP_MS / 1000)) };
}

async function measureReads(dialect: Dialect, attackers: number, run: number): Promise<Row> {
  let go = (): void => {};
  const going = new Promise<void>((resolve) => (go = resolve));
  let stocked = 0;
  let allStocked = (): void => {};
  const ready = new Promise<void>((resolve) => (allStocked = resolve));
  let finished = 0;
  const readers = Array.from({ length: attackers }, (_, i) =>
    heavyReader(dialect, `reader${run}-${i}`, going, () => {
      if (++stocked === attackers) allStocked();
    }).then((read) => {
      finished++;
      return read;
    }),
  );
  // A reader that fails while stocking fails the run, rather than leaving it waiting.
  await Promise.race([ready, Promise.all(readers)]);
  const started = performance.now();
  go();
  // The readers are at full depth from their first turn: no ramp.
  const timed = await interactiveUser(await open(dialect.port), dialect, `user${run}`, durationMs, () => finished > 0);
  const read = (await Promise.all(readers)).reduce((a, b) => a + b, 0);
  const seconds = (performance.now() - started) / 1000;
  return { server: dialect.name, attackers, roundTrips: timed.roundTrips, p50Ms: timed.p50, p99Ms: timed.p99, maxMs: timed.max, heavyPerSecond: Math.round(read / seconds) };
}

const rows: Row[] = [];
console.log(`bench:fairness, ${new Date().toISOString()}`);
console.log(`machine: ${formatMachine(describeMachine())}`);
console.log(
  readsMode
    ? `load: heavy connections each stock their mailbox with ${stock} messages of ${messageBytes} bytes, then drain it ${depth} READs deep; one user sends a pair at a time, 5 ms apart, for ${durationMs / 1000} s or until a heavy connection has read its mailbox empty`
    : `load: heavy connections each keep ${depth}-${2 * depth} pairs of ${messageBytes}-byte COMPOSE+READ in flight; one user sends a pair at a time, 5 ms apart, for ${durationMs / 1000} s`,
);

const served = await startServe(['--memory', '--shards', String(shards), '--max-messages', String(Math.max(1024, stock)), '--max-line', String(Math.max(65_536, messageBytes))]);
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

console.log(`\n| server | heavy connections | user round trips | p50 ms | p99 ms | max ms | heavy ${readsMode ? 'messages read' : 'pairs'}/s |`);
console.log('| --- | --: | --: | --: | --: | --: | --: |');
for (const row of rows) {
  console.log(`| ${row.server} | ${row.attackers} | ${row.roundTrips} | ${row.p50Ms} | ${row.p99Ms} | ${row.maxMs} | ${row.heavyPerSecond.toLocaleString('en-US')} |`);
}
if (values.json !== undefined) writeFileSync(values.json, `${JSON.stringify({ heavy: values.heavy, messageBytes, depth, durationMs, shards, stock: readsMode ? stock : undefined, rows }, null, 2)}\n`);
