// Durable storage at scale: fills a server's data directory with many stored messages,
// then measures the server's memory (RSS) holding them and the time a restart takes.
//
//   npm run bench:durable -- [--messages 1000000] [--users 10000] [--message-bytes 100]
//                            [--shards N] [--connections 8] [--pipeline 256] [--fsync]
//
// The server runs as its own process (`pigeonhole serve` from dist/), as in production.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { type Socket, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

// The compiled server (`npm run build`), as users run it: tsx's loader would add to RSS.
const MAIN = new URL('../dist/lib/cli/main.js', import.meta.url).pathname;

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

interface Served {
  child: ChildProcess;
  port: number;
  startMs: number;
}

async function serve(dir: string): Promise<Served> {
  const args = [MAIN, 'serve', '--port', '0', '--data-dir', dir];
  if (values.shards !== undefined) args.push('--shards', values.shards);
  if (values.fsync) args.push('--fsync');
  const started = performance.now();
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening on [^:]+:(\d+)/.exec(out);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  return { child, port, startMs: performance.now() - started };
}

/** The server's resident memory, from /proc (the whole process: every thread). */
function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
  return kib / 1024;
}

async function open(port: number): Promise<Socket> {
  const socket = connect({ port, host: '127.0.0.1', noDelay: true });
  await once(socket, 'connect');
  return socket;
}

/** Sends `count` COMPOSEs over one connection, `pipeline` at a time; resolves with how many were SENT. */
async function fill(port: number, index: number, count: number): Promise<number> {
  const socket = await open(port);
  const body = Buffer.alloc(messageBytes, 0x61);
  let replies = 0;
  let sent = 0;
  let ok = 0;
  let pending = '';
  await new Promise<void>((resolve, reject) => {
    const sendMore = (): void => {
      const chunks: Buffer[] = [];
      while (sent < count && sent - replies < pipeline) {
        const user = `user${(index * count + sent) % users}`;
        chunks.push(Buffer.from(`COMPOSE ${user}\n`), body, Buffer.from('\n'));
        sent++;
      }
      if (chunks.length > 0) socket.write(Buffer.concat(chunks));
    };
    socket.on('data', (chunk: Buffer) => {
      pending += chunk.toString('latin1');
      let lf = pending.indexOf('\n');
      while (lf !== -1) {
        const line = pending.slice(0, lf);
        pending = pending.slice(lf + 1);
        replies++;
        if (line === 'MESSAGE SENT') ok++;
        else if (line !== 'MESSAGE FAILED' && replies > 1) reject(new Error(`unexpected reply ${line}`));
        lf = pending.indexOf('\n');
      }
      // The first reply is LOGIN's count.
      if (replies - 1 === count) resolve();
      else if (replies > 1 || count === 0) sendMore();
    });
    socket.on('error', reject);
    socket.write(`LOGIN filler${index}\n`);
    sendMore();
  });
  socket.destroy();
  return ok;
}

async function countFor(port: number, user: string): Promise<number> {
  const socket = await open(port);
  socket.write(`LOGIN ${user}\nEXIT\n`);
  let text = '';
  for await (const chunk of socket) text += (chunk as Buffer).toString();
  return Number(text.trim());
}

async function stop(child: ChildProcess): Promise<void> {
  child.kill('SIGTERM');
  if (child.exitCode === null) await once(child, 'exit');
}

const dir = mkdtempSync(join(tmpdir(), 'pigeonhole-durable-bench-'));
try {
  console.log(`config: messages=${messages} users=${users} message-bytes=${messageBytes} connections=${connections} pipeline=${pipeline} shards=${values.shards ?? 'default'} fsync=${values.fsync}`);
  const first = await serve(dir);
  console.log(`empty start: ${first.startMs.toFixed(0)} ms, RSS ${rssMiB(first.child.pid as number).toFixed(1)} MiB`);
  const began = performance.now();
  const per = Math.ceil(messages / connections);
  const stored = (await Promise.all(Array.from({ length: connections }, (_, i) => fill(first.port, i, Math.min(per, messages - i * per))))).reduce((a, b) => a + b, 0);
  const seconds = (performance.now() - began) / 1000;
  console.log(`filled: ${stored} messages in ${seconds.toFixed(1)} s = ${Math.round(stored / seconds)} COMPOSE/s (durable, pipeline ${pipeline})`);
  console.log(`RSS holding them: ${rssMiB(first.child.pid as number).toFixed(1)} MiB`);
  await stop(first.child);

  const second = await serve(dir);
  console.log(`restart with ${stored} stored: ${second.startMs.toFixed(0)} ms to "listening", RSS ${rssMiB(second.child.pid as number).toFixed(1)} MiB`);
  const sample = await countFor(second.port, 'user0');
  console.log(`user0 has ${sample} messages after the restart (expected ${Math.floor(stored / users)})`);
  await stop(second.child);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
