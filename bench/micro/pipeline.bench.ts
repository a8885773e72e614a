// The acceptor's and an inline shard's JavaScript for one command, without sockets or
// the kernel: framing, parsing, routing, the shard's store work and reply ordering, fed
// from memory through a stand-in socket. Loopback benchmarks on a shared 2-core machine
// swing by ±20% run to run; this one measures the code alone, steadily enough to compare
// two versions of it.
//
//   npm run bench:micro -- --help
import type { Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { silentLogger } from '../../lib/logger.js';
import { Connection } from '../../lib/session/connection.js';
import { Backlog } from '../../lib/session/backlog.js';
import { ConnectionGuard } from '../../lib/session/connection-guard.js';
import { SessionCounters } from '../../lib/session/counters.js';
import { InlineShards } from '../../lib/shards/inline-shards.js';
import { ShardRouter } from '../../lib/shards/router.js';
import { FakeSocket } from './fake-socket.js';

const USAGE = `usage: npm run bench:micro -- [options]

The acceptor's and an inline shard's JavaScript for one command, fed from memory (no
sockets, no kernel): CPU µs per command, to compare two versions of the code.

  --connections N     connections fed in turn (default 50)
  --pipeline N        commands per connection per round (default 16)
  --rounds N          rounds per repeat (default 2000)
  --message-bytes N   COMPOSE body size (default 64)
  --repeat N          runs, each timed alone; the median and the lowest are printed
                      (default 5)
  -h, --help          this text`;

function usageError(message: string): never {
  process.stderr.write(`bench:micro: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function parse(): ReturnType<typeof parseFlags> {
  try {
    return parseFlags();
  } catch (err) {
    return usageError((err as Error).message);
  }
}

function parseFlags() {
  return parseArgs({
    options: {
      connections: { type: 'string', default: '50' },
      pipeline: { type: 'string', default: '16' },
      rounds: { type: 'string', default: '2000' },
      'message-bytes': { type: 'string', default: '64' },
      repeat: { type: 'string', default: '5' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }).values;
}

function positive(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) usageError(`--${name} must be a positive integer, got ${value}`);
  return n;
}

const values = parse();
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const connections = positive('connections', values.connections);
const pipeline = positive('pipeline', values.pipeline);
const rounds = positive('rounds', values.rounds);
const messageBytes = positive('message-bytes', values['message-bytes']);
const repeat = positive('repeat', values.repeat);

async function run(): Promise<{ ops: number; cpuMs: number }> {
  const router = new ShardRouter(new InlineShards(silentLogger), { replay: false, logger: silentLogger });
  await router.start({ maxMessagesPerUser: 1_000_000, store: { kind: 'memory' } });
  const limits = { maxLineBytes: 65_536, idleTimeoutMs: 0, maxInFlight: 1024 };
  const guard = new ConnectionGuard({ maxConnections: connections, maxConnectionsPerIp: 0, maxConnectionRatePerIp: 0, lineTimeoutMs: 0, maxLineBufferBytes: 64 * 1024 * 1024, maxReplyBufferBytes: 256 * 1024 * 1024, logger: silentLogger });
  const sockets = Array.from({ length: connections }, () => new FakeSocket());
  // As the server does: one guard and one set of counters shared by every connection.
  const context = { guard, counters: new SessionCounters(), identity: null, logger: silentLogger, sharedReadBuffer: null, backlog: new Backlog() };
  for (const socket of sockets) new Connection(socket as unknown as Socket, router, limits, context, () => {});
  const body = 'x'.repeat(messageBytes);
  // Each round: every connection sends `pipeline` commands, half COMPOSE (to itself, so
  // READs find messages), half READ, in one chunk; the turn ends as the event loop's would.
  const chunks = sockets.map((_, i) => {
    let text = '';
    for (let k = 0; k < pipeline; k++) text += k % 2 === 0 ? `COMPOSE user${i}\n${body}\n` : 'READ\n';
    return Buffer.from(text);
  });
  sockets.forEach((socket, i) => socket.emit('data', Buffer.from(`LOGIN user${i}\n`)));
  await new Promise((resolve) => setImmediate(resolve));
  const before = process.cpuUsage();
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < sockets.length; i++) (sockets[i] as FakeSocket).emit('data', chunks[i]);
    await new Promise((resolve) => setImmediate(resolve));
  }
  const used = process.cpuUsage(before);
  await router.close();
  return { ops: rounds * connections * pipeline, cpuMs: (used.user + used.system) / 1000 };
}

console.log(`config: connections=${connections} pipeline=${pipeline} rounds=${rounds} message-bytes=${messageBytes}, Node ${process.version}`);
const results: number[] = [];
for (let i = 0; i < repeat; i++) {
  const { ops, cpuMs } = await run();
  results.push((cpuMs * 1000) / ops);
  console.log(`run ${i + 1}: ${ops} commands, ${((cpuMs * 1000) / ops).toFixed(3)} µs CPU per command`);
}
results.sort((a, b) => a - b);
// The minimum is the steadiest figure on a shared machine: other load only ever adds.
console.log(`median: ${(results[Math.floor(results.length / 2)] as number).toFixed(3)} µs, min: ${(results[0] as number).toFixed(3)} µs CPU per command`);
