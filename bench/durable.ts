// Durable storage at scale: fills a server's data directory with many stored messages,
// then measures the server's memory (RSS) holding them and the time a restart takes.
//
//   npm run bench:durable -- [--messages 1000000] [--users 10000] [--message-bytes 100]
//                            [--shards N] [--connections 8] [--pipeline 256] [--fsync]
//
// The server runs as its own process (`pigeonhole serve` from dist/), as in production.
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { flood } from './flood.js';
import { describeMachine, formatMachine } from './machine.js';
import { procRss } from './proc.js';
import { type ServeProcess, startServe } from './serve-process.js';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '1000000' },
    users: { type: 'string', default: '10000' },
    'message-bytes': { type: 'string', default: '100' },
    shards: { type: 'string' },
    connections: { type: 'string', default: '8' },
    pipeline: { type: 'string', default: '256' },
    fsync: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write(readFileSync(new URL(import.meta.url), 'utf8').split('\n').slice(0, 7).join('\n') + '\n');
  process.exit(0);
}
const messages = Number(values.messages);
const users = Number(values.users);
const messageBytes = Number(values['message-bytes']);
const connections = Number(values.connections);
const pipeline = Number(values.pipeline);
const body = Buffer.alloc(messageBytes, 0x61);

function serve(dir: string): Promise<ServeProcess> {
  const args = ['--data-dir', dir];
  if (values.shards !== undefined) args.push('--shards', values.shards);
  if (values.fsync) args.push('--fsync');
  return startServe(args);
}

/** The server's resident memory (the whole process: every thread). */
function rssMiB(pid: number): string {
  return ((procRss(pid, 'VmRSS') ?? Number.NaN) / 2 ** 20).toFixed(1);
}

/** Connection `index` sends `count` COMPOSEs, to users in turn; resolves with how many were SENT. */
function fill(port: number, index: number, count: number): Promise<number> {
  return flood({
    port,
    greeting: Buffer.from(`LOGIN filler${index}\n`),
    greetingLines: 1,
    count,
    command: (i) => Buffer.concat([Buffer.from(`COMPOSE user${(index * count + i) % users}\n`), body, Buffer.from('\n')]),
    linesPerReply: 1,
    pipeline,
    accept: (line) => line === 'MESSAGE SENT',
  });
}

async function countFor(port: number, user: string): Promise<number> {
  const socket = connect({ port, host: '127.0.0.1', noDelay: true });
  await once(socket, 'connect');
  socket.write(`LOGIN ${user}\nEXIT\n`);
  let text = '';
  for await (const chunk of socket) text += (chunk as Buffer).toString();
  return Number(text.trim());
}

const dir = mkdtempSync(join(tmpdir(), 'pigeonhole-durable-bench-'));
try {
  console.log(`machine: ${formatMachine(describeMachine())}`);
  console.log(`config: messages=${messages} users=${users} message-bytes=${messageBytes} connections=${connections} pipeline=${pipeline} shards=${values.shards ?? 'default'} fsync=${values.fsync}`);
  const first = await serve(dir);
  console.log(`empty start: ${first.startMs.toFixed(0)} ms, RSS ${rssMiB(first.pid)} MiB`);
  const began = performance.now();
  const per = Math.ceil(messages / connections);
  const stored = (await Promise.all(Array.from({ length: connections }, (_, i) => fill(first.port, i, Math.min(per, messages - i * per))))).reduce((a, b) => a + b, 0);
  const seconds = (performance.now() - began) / 1000;
  console.log(`filled: ${stored} messages in ${seconds.toFixed(1)} s = ${Math.round(stored / seconds)} COMPOSE/s (durable, pipeline ${pipeline})`);
  console.log(`RSS holding them: ${rssMiB(first.pid)} MiB`);
  await first.stop();

  const second = await serve(dir);
  console.log(`restart with ${stored} stored: ${second.startMs.toFixed(0)} ms to "listening", RSS ${rssMiB(second.pid)} MiB`);
  const sample = await countFor(second.port, 'user0');
  console.log(`user0 has ${sample} messages after the restart (expected ${Math.floor(stored / users)})`);
  await second.stop();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
