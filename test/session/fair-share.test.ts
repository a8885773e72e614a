// While a thread's shards are backed up, a connection that already has its fair share of
// bytes in flight (COMPOSE messages, and the replies its READs are expected to bring) is
// not read on: a few connections pipelining big messages, in or out, cannot queue
// megabytes ahead of another user's one command.
import type { Socket } from 'node:net';
import test from 'ava';
import { FakeSocket } from '../../bench/micro/fake-socket.js';
import { silentLogger } from '../../lib/logger.js';
import { BACKLOGGED_BYTES, Backlog } from '../../lib/session/backlog.js';
import { Connection } from '../../lib/session/connection.js';
import { ConnectionGuard } from '../../lib/session/connection-guard.js';
import { SessionCounters } from '../../lib/session/counters.js';
import { IN_FLIGHT_BUDGET_BYTES } from '../../lib/session/reply-budget.js';
import { OP_COUNT, OP_READ, ReplyWriter, RequestReader } from '../../lib/shards/messages.js';
import type { ShardSink } from '../../lib/shards/backend.js';
import { ShardRouter } from '../../lib/shards/router.js';
import { fakeBackend } from '../helpers/fake-backend.js';

const MESSAGE_BYTES = 60_000;

/** Connections of one thread over a shard that never answers: every command stays in flight. */
function thread(): { connect: () => { connection: Connection; socket: FakeSocket } } {
  const router = new ShardRouter(fakeBackend({ send: () => {} }), { replay: false, logger: silentLogger });
  const guard = new ConnectionGuard({ maxConnections: 10, maxConnectionsPerIp: 0, maxConnectionRatePerIp: 0, lineTimeoutMs: 0, maxLineBufferBytes: 64 << 20, maxReplyBufferBytes: 256 << 20, logger: silentLogger });
  const context = { guard, counters: new SessionCounters(), identity: null, logger: silentLogger, sharedReadBuffer: null, backlog: new Backlog() };
  const limits = { maxLineBytes: 1 << 20, idleTimeoutMs: 0, maxInFlight: 1024 };
  return {
    connect: () => {
      const socket = new FakeSocket();
      return { connection: new Connection(socket as unknown as Socket, router, limits, context, () => {}), socket };
    },
  };
}

function composes(user: string, count: number, bytes: number): Buffer {
  return Buffer.from(`LOGIN ${user}\n` + `COMPOSE ${user}\n${'x'.repeat(bytes)}\n`.repeat(count));
}

test('a connection alone keeps up to the mark in flight; two heavy ones half of it each; a light one is read at once', (t) => {
  t.true(100 * MESSAGE_BYTES > IN_FLIGHT_BUDGET_BYTES, 'more than a connection\'s own budget is sent');
  const { connect } = thread();
  const cost = (user: string): number => MESSAGE_BYTES + 2 * user.length;
  const heavy = connect();
  heavy.socket.emit('data', composes('heavy', 100, MESSAGE_BYTES));
  // LOGIN, then COMPOSEs until its own bytes reach the mark: its share, alone.
  const alone = heavy.connection.replies.backlogBytes;
  t.is(alone, Math.ceil(BACKLOGGED_BYTES / cost('heavy')) * cost('heavy'), `alone: ${alone} bytes in flight`);
  t.true(alone < IN_FLIGHT_BUDGET_BYTES - MESSAGE_BYTES, 'held back before its own budget');

  // A second one is read as long as it holds less than half the mark.
  const second = connect();
  second.socket.emit('data', composes('second', 100, MESSAGE_BYTES));
  t.is(second.connection.replies.backlogBytes, Math.ceil(BACKLOGGED_BYTES / 2 / cost('second')) * cost('second'));
  t.is(heavy.connection.replies.backlogBytes, alone, 'the first took nothing more meanwhile (it had no reply)');

  const light = connect();
  light.socket.emit('data', Buffer.from('LOGIN light\nCOMPOSE light\nhi\nREAD\n'));
  t.is(light.connection.replies.size, 3, 'every command of a connection with little in flight is taken');

  // The first gone, the backlog is below its mark: a new heavy connection may go as far as it did.
  heavy.connection.destroy();
  const third = connect();
  third.socket.emit('data', composes('third', 100, MESSAGE_BYTES));
  const before = second.connection.replies.backlogBytes + 2 * 'light'.length + 2;
  t.true(third.connection.replies.backlogBytes >= Math.min(BACKLOGGED_BYTES - before, BACKLOGGED_BYTES / 3), `the third: ${third.connection.replies.backlogBytes} bytes`);
});

/**
 * One connection over a shard that answers each batch on the next turn, every READ with a
 * message of `bytes`; resolves with the most READs the connection had in flight at once,
 * after its first batch, while it took `reads` READs.
 */
async function mostReadsInFlight(bytes: number, reads: number): Promise<number> {
  let sink: ShardSink | null = null;
  const body = Buffer.alloc(bytes, 0x6d);
  let most = 0;
  let batches = 0;
  let connection: Connection | null = null;
  const backend = fakeBackend({
    send: (_shard, batch) => {
      const requests = new RequestReader(Buffer.from(batch));
      const replies = new ReplyWriter();
      while (requests.next()) {
        if (requests.op === OP_READ) replies.messageReply('sender', body);
        else if (requests.op === OP_COUNT) replies.countReply(reads);
        else replies.reply(Buffer.from('MESSAGE SENT\n'));
      }
      const reply = replies.take();
      if (batches++ > 0) most = Math.max(most, connection?.replies.size ?? 0);
      setImmediate(() => sink?.onReply(0, reply));
    },
  });
  backend.start = async (_config, given) => {
    sink = given;
  };
  const router = new ShardRouter(backend, { replay: false, logger: silentLogger });
  await router.start({ store: { kind: 'memory' } } as never);
  const guard = new ConnectionGuard({ maxConnections: 10, maxConnectionsPerIp: 0, maxConnectionRatePerIp: 0, lineTimeoutMs: 0, maxLineBufferBytes: 64 << 20, maxReplyBufferBytes: 256 << 20, logger: silentLogger });
  const context = { guard, counters: new SessionCounters(), identity: null, logger: silentLogger, sharedReadBuffer: null, backlog: new Backlog() };
  const socket = new FakeSocket();
  const expected = socket.written;
  connection = new Connection(socket as unknown as Socket, router, { maxLineBytes: 65_536, idleTimeoutMs: 0, maxInFlight: 1024 }, context, () => {});
  socket.emit('data', Buffer.from(`LOGIN reader\n${'READ\n'.repeat(reads)}`));
  const deadline = Date.now() + 10_000;
  while (socket.written - expected < reads * bytes && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
  return most;
}

test('a connection draining big messages keeps about its share of READs in flight once its replies show their size; one draining small ones keeps its whole pipeline', async (t) => {
  // 60 kB messages: the per-connection budget allows 64 READs in flight, the fair share about 17.
  const big = await mostReadsInFlight(MESSAGE_BYTES, 300);
  t.true(big <= Math.ceil(BACKLOGGED_BYTES / MESSAGE_BYTES) + 2, `big messages: at most ${big} READs in flight after the first batch`);
  const small = await mostReadsInFlight(100, 300);
  t.true(small >= 60, `small messages: ${small} READs in flight`);
});
