// While a thread's shards are backed up with COMPOSEs, a connection that already has its
// fair share of message bytes in flight is not read on: a few connections pipelining big
// messages cannot queue megabytes ahead of another user's one command.
import type { Socket } from 'node:net';
import test from 'ava';
import { FakeSocket } from '../../bench/micro/fake-socket.js';
import { silentLogger } from '../../lib/logger.js';
import { BACKLOGGED_BYTES, Backlog } from '../../lib/session/backlog.js';
import { Connection } from '../../lib/session/connection.js';
import { ConnectionGuard } from '../../lib/session/connection-guard.js';
import { SessionCounters } from '../../lib/session/counters.js';
import { IN_FLIGHT_BUDGET_BYTES } from '../../lib/session/reply-budget.js';
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
