// Memory per stored message: fills pigeonhole (in memory; inline and with worker shards)
// and Redis with the same messages, and compares how much each process's resident set
// grew to hold them. Then it reads every message back and reports what is left.
//
//   npm run bench:memory -- [--messages 1000000] [--mailboxes 1000] [--message-bytes 64]
//                           [--warmup 20000] [--shards 0,2] [--order interleaved,sequential]
//                           [--no-redis] [--json FILE]
//
// Two arrival orders, since they fare differently: 'interleaved' sends message k to
// mailbox k mod M, so every mailbox grows at once, as when many senders write to many
// users; 'sequential' fills one mailbox after the other, the order Redis's lists pack
// most tightly in.
//
// Servers are separate processes: pigeonhole compiled (dist/, as users run it), Redis
// with persistence off. RSS is the kernel's VmRSS of the whole process (every thread).
// Before the measured fill, each server stores and reads back a few messages in mailboxes
// of their own (--warmup), so that what a first fill costs once (the code it runs paged
// in and compiled, buffers sized on first use) is not counted as the messages' memory;
// the growth from launch, warm-up included, is printed beside it.
// Beside it, what the store itself counts (pigeonhole's store_bytes metric, Redis's
// used_memory): the data, without the runtime around it.
import { writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { UsageError, integerFlag } from '../lib/cli/flags.js';
import { MAX_SHARDS } from '../lib/options.js';
import { flood } from './flood.js';
import { describeMachine, formatMachine } from './machine.js';
import { procRss } from './proc.js';
import { RedisProcess, findRedisServer, freePort, redisInfo, redisVersion } from './redis.js';
import { startServe } from './serve-process.js';

const CONNECTIONS = 8;
const PIPELINE = 256;
// Heap garbage from the fill is not stored messages: give the server a moment of quiet
// before reading its RSS.
const SETTLE_MS = 2_000;

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '1000000' },
    mailboxes: { type: 'string', default: '1000' },
    'message-bytes': { type: 'string', default: '64' },
    warmup: { type: 'string', default: '20000' },
    shards: { type: 'string', default: '0,2' },
    order: { type: 'string', default: 'interleaved,sequential' },
    'no-redis': { type: 'boolean', default: false },
    json: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write('Usage: npm run bench:memory -- [--messages N] [--mailboxes N] [--message-bytes N] [--warmup N] [--shards 0,2] [--order interleaved,sequential] [--no-redis] [--json FILE]\n');
  process.exit(0);
}
const messages = integerFlag('messages', values.messages, 1, 100_000_000) as number;
const mailboxes = integerFlag('mailboxes', values.mailboxes, 1, 10_000_000) as number;
const messageBytes = integerFlag('message-bytes', values['message-bytes'], 1, 60_000) as number;
const warmup = integerFlag('warmup', values.warmup, 0, 10_000_000) as number;
// The warm-up's messages go to this many mailboxes of their own, after the measured ones.
const WARMUP_MAILBOXES = Math.min(20, Math.max(1, warmup));
const perWarmupMailbox = Math.ceil(warmup / WARMUP_MAILBOXES);
const shardCounts = (values.shards ?? '').split(',').filter((s) => s !== '').map((s) => integerFlag('shards', s, 0, MAX_SHARDS) as number);
const perMailbox = Math.ceil(messages / mailboxes);
type Order = 'interleaved' | 'sequential';
const orders = (values.order ?? '').split(',').map((order) => {
  if (order !== 'interleaved' && order !== 'sequential') throw new UsageError(`--order must list interleaved and/or sequential, got '${values.order}'`);
  return order as Order;
});
// The mailbox of message k in each order, of `count` mailboxes from `first` holding `per` each.
const spread: Record<Order, (first: number, count: number, per: number) => (k: number) => number> = {
  interleaved: (first, count) => (k) => first + (k % count),
  sequential: (first, _count, per) => (k) => first + Math.floor(k / per),
};
const body = Buffer.alloc(messageBytes, 0x61);

interface Row {
  readonly config: string;
  readonly order: Order;
  /** Before the warm-up. */
  readonly launchRss: number;
  /** After the warm-up: where the growth is counted from. */
  readonly startRss: number;
  readonly fullRss: number;
  /** The store's own count of what it holds, full, less the same when empty. */
  readonly dataBytes: number;
  readonly drainedRss: number;
  readonly stored: number;
  readonly seconds: number;
}

/** What measure() needs of a server: how to store message k, and how to read a mailbox empty. */
interface Target {
  readonly port: number;
  readonly pid: number;
  /** What the store counts as held, in bytes. */
  dataBytes(): Promise<number>;
  /** The i-th command that stores a message in mailbox `mailbox`. */
  store(mailbox: number): Buffer;
  storedAnswer(line: string): boolean;
  /** Sent first on each filling connection (a LOGIN), if the protocol has one. */
  fillGreeting(connection: number): Buffer | undefined;
  /** The greeting and the command that read mailbox `mailbox`, one message at a time. */
  readGreeting(mailbox: number): Buffer | undefined;
  read(mailbox: number): Buffer;
}

/** Stores `count` messages over CONNECTIONS connections, message k in mailbox `mailboxOf(k)`. */
async function fill(target: Target, count: number, mailboxOf: (k: number) => number): Promise<number> {
  const per = Math.ceil(count / CONNECTIONS);
  const counts = await Promise.all(
    Array.from({ length: CONNECTIONS }, (_, c) => {
      const first = c * per;
      const greeting = target.fillGreeting(c);
      return flood({
        port: target.port,
        greeting,
        greetingLines: greeting === undefined ? 0 : 1,
        count: Math.max(0, Math.min(per, count - first)),
        command: (i) => target.store(mailboxOf(first + i)),
        linesPerReply: 1,
        pipeline: PIPELINE,
        accept: (line) => target.storedAnswer(line),
      });
    }),
  );
  return counts.reduce((a, b) => a + b, 0);
}

/** Reads `count` mailboxes from `first` empty, `each` messages a mailbox, CONNECTIONS mailboxes at a time. */
async function drain(target: Target, first: number, count: number, each: number): Promise<number> {
  let taken = 0;
  for (let start = first; start < first + count; start += CONNECTIONS) {
    const batch = Array.from({ length: Math.min(CONNECTIONS, first + count - start) }, (_, i) => {
      const mailbox = start + i;
      const greeting = target.readGreeting(mailbox);
      const read = target.read(mailbox);
      return flood({ port: target.port, greeting, greetingLines: greeting === undefined ? 0 : 1, count: each, command: () => read, linesPerReply: 2, pipeline: PIPELINE, accept: () => true });
    });
    for (const n of await Promise.all(batch)) taken += n;
  }
  return taken;
}

async function measure(config: string, order: Order, target: Target): Promise<Row> {
  await sleep(SETTLE_MS);
  const rss = (): number => procRss(target.pid, 'VmRSS') ?? Number.NaN;
  const launchRss = rss();
  if (warmup > 0) {
    const warmed = await fill(target, warmup, spread[order](mailboxes, WARMUP_MAILBOXES, perWarmupMailbox));
    const read = await drain(target, mailboxes, WARMUP_MAILBOXES, perWarmupMailbox);
    if (read !== warmed) throw new Error(`${config}: ${warmed} stored in the warm-up but ${read} read back`);
    await sleep(SETTLE_MS);
  }
  const startRss = rss();
  const emptyData = await target.dataBytes();
  const began = performance.now();
  const stored = await fill(target, messages, spread[order](0, mailboxes, perMailbox));
  const seconds = (performance.now() - began) / 1000;
  await sleep(SETTLE_MS);
  const fullRss = rss();
  const dataBytes = (await target.dataBytes()) - emptyData;
  const taken = await drain(target, 0, mailboxes, perMailbox);
  if (taken !== stored) throw new Error(`${config}: ${stored} stored but ${taken} read back`);
  await sleep(SETTLE_MS);
  return { config, order, launchRss, startRss, fullRss, dataBytes, drainedRss: rss(), stored, seconds };
}

async function pigeonhole(shards: number, order: Order): Promise<Row> {
  const metricsPort = await freePort();
  // The drain opens a connection per mailbox from 127.0.0.1, faster than one address may by default.
  const served = await startServe(['--memory', '--shards', String(shards), '--max-messages', String(Math.max(perMailbox, perWarmupMailbox, 1024)), '--metrics', `127.0.0.1:${metricsPort}`, '--max-connection-rate-per-ip', '0']);
  try {
    const read = Buffer.from('READ\n');
    return await measure(shards === 0 ? 'pigeonhole, inline' : `pigeonhole, ${shards} shards`, order, {
      port: served.port,
      pid: served.pid,
      dataBytes: async () => {
        const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
        return [...text.matchAll(/^pigeonhole_store_bytes\{[^}]*\} (\d+)$/gm)].reduce((sum, match) => sum + Number(match[1]), 0);
      },
      store: (m) => Buffer.concat([Buffer.from(`COMPOSE user${m}\n`), body, Buffer.from('\n')]),
      storedAnswer: (line) => line === 'MESSAGE SENT',
      fillGreeting: (c) => Buffer.from(`LOGIN filler${c}\n`),
      readGreeting: (m) => Buffer.from(`LOGIN user${m}\n`),
      read: () => read,
    });
  } finally {
    await served.stop();
  }
}

async function redis(binary: string, order: Order): Promise<Row> {
  const server = await RedisProcess.start(binary);
  const bulk = (word: string): string => `$${Buffer.byteLength(word)}\r\n${word}\r\n`;
  try {
    // Redis has no login: RPUSH and LPOP name the list.
    return await measure(`Redis ${redisVersion(binary) ?? ''}`.trim(), order, {
      port: server.port,
      pid: server.pid,
      dataBytes: async () => {
        const info = await redisInfo(server.port, 'memory');
        return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? Number.NaN);
      },
      store: (m) => Buffer.concat([Buffer.from(`*3\r\n${bulk('RPUSH')}${bulk(`user${m}`)}$${messageBytes}\r\n`), body, Buffer.from('\r\n')]),
      storedAnswer: (line) => line.startsWith(':'),
      fillGreeting: () => undefined,
      readGreeting: () => undefined,
      read: (m) => Buffer.from(`*2\r\n${bulk('LPOP')}${bulk(`user${m}`)}`),
    });
  } finally {
    await server.stop();
  }
}

const rows: Row[] = [];
console.log(`bench:memory, ${new Date().toISOString()}`);
console.log(`machine: ${formatMachine(describeMachine())}`);
console.log(`load: ${messages.toLocaleString('en-US')} messages of ${messageBytes} bytes into ${mailboxes.toLocaleString('en-US')} mailboxes, ${CONNECTIONS} connections, pipeline ${PIPELINE}; warm-up first: ${warmup.toLocaleString('en-US')} messages stored and read back in ${WARMUP_MAILBOXES} mailboxes of their own`);
const binary = values['no-redis'] ? null : findRedisServer();
if (binary === null && !values['no-redis']) console.log('Redis: skipped, redis-server is not on PATH');
for (const order of orders) {
  for (const shards of shardCounts) rows.push(await pigeonhole(shards, order));
  if (binary !== null) rows.push(await redis(binary, order));
}

const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);

const growth = (row: Row): number => row.fullRss - row.startRss;
const fromLaunch = (row: Row): number => row.fullRss - row.launchRss;
console.log('');
console.log('| order | server | stored | RSS at launch | RSS warm | RSS full | growth | bytes per message | vs Redis | growth from launch | vs Redis | store data per message | RSS after draining | fill rate |');
console.log('|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|');
for (const row of rows) {
  const redisRow = rows.find((other) => other.order === row.order && other.config.startsWith('Redis'));
  const ratio = (measure: (row: Row) => number): string => (redisRow === undefined ? '' : `${(measure(row) / measure(redisRow)).toFixed(2)}x`);
  console.log(
    `| ${row.order} | ${row.config} | ${row.stored.toLocaleString('en-US')} | ${mib(row.launchRss)} MiB | ${mib(row.startRss)} MiB | ${mib(row.fullRss)} MiB | +${mib(growth(row))} MiB | ${(growth(row) / row.stored).toFixed(1)} | ${ratio(growth)} | +${mib(fromLaunch(row))} MiB | ${ratio(fromLaunch)} | ${(row.dataBytes / row.stored).toFixed(1)} | ${mib(row.drainedRss)} MiB | ${Math.round(row.stored / row.seconds).toLocaleString('en-US')}/s |`,
  );
}
if (values.json !== undefined) writeFileSync(values.json, `${JSON.stringify({ format: 'pigeonhole-bench-memory/1', machine: describeMachine(), messages, mailboxes, messageBytes, warmup, rows }, null, 2)}\n`);
