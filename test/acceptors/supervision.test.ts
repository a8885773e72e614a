// Two acceptor threads in front of two worker shards, when things go wrong or end: an
// acceptor thread killed mid-flood, a shard killed with batches from both threads in
// flight (durable: replayed from the journal by link and seq), and close() with clients
// on every thread.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import Database from 'better-sqlite3';
import { type LogFields, type Logger, formatLine } from '../../lib/logger.js';
import { kAcceptorPool, kAcceptorRemotes, kShardBackend } from '../../lib/server.js';
import type { WorkerShards } from '../../lib/shards/worker-shards.js';
import { checkDelivery, drain, flood } from '../durability/flood.js';
import { acceptorsOf, clientsOnEvery, oneOnEach } from '../helpers/acceptors.js';
import { LineClient, compose, until } from '../helpers/line-client.js';
import { startServer, uniqueName } from '../helpers/server.js';

const RECIPIENTS = Array.from({ length: 12 }, (_, i) => `r${i}`);
// A flood runs until stopped, at most this many messages per sender; the mailboxes take
// them all, so no COMPOSE fails for a full mailbox.
const PER_SENDER = 10_000;
const ROOMY = { maxMessagesPerUser: 8 * PER_SENDER };

function dataDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'pigeonhole-acceptors-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function errorLog(): { logger: Logger; errors: { fields: LogFields; line: string }[] } {
  const errors: { fields: LogFields; line: string }[] = [];
  return { errors, logger: { info: () => {}, warn: () => {}, error: (fields, message) => errors.push({ fields, line: formatLine(fields, message) }) } };
}

/** Thread ids of the worker threads alive in this process right now. */
function liveThreadIds(): number[] {
  const report = process.report.getReport() as { workers?: { header?: { threadId?: number } }[] };
  return (report.workers ?? []).map((worker) => worker.header?.threadId).filter((id): id is number => typeof id === 'number');
}

/** A promise to stop a flood with, and its resolve. */
function stopper(): { promise: Promise<void>; resolve: () => void } {
  let resolve = (): void => {};
  const promise = new Promise<void>((settle) => (resolve = settle));
  return { promise, resolve };
}

/** A READ on a logged-in `client`: true if it was answered, false if the connection is gone. */
async function stillServed(client: LineClient): Promise<boolean> {
  try {
    await client.send(`READ\n`);
    return (await client.readLine(5_000)).length > 0;
  } catch {
    return false;
  }
}

// Serial: the listening thread is the test's own, and a test beside it that keeps it
// busy leaves the flood's connections to the other thread alone.
test.serial('a killed acceptor thread drops only its own connections, is restarted and logged; nothing acknowledged is lost', async (t) => {
  const { logger, errors } = errorLog();
  const dir = dataDir(t);
  const { server, port, connect } = await startServer(t, { acceptors: 2, shards: 2, dataDir: dir, logger, ...ROOMY });
  // Bystanders on both threads, logged in and idle.
  const [onMain, onWorker] = await clientsOnEvery(server, connect, 2);
  for (const client of [...(onMain ?? []), ...(onWorker ?? [])]) {
    await client.send(`LOGIN ${uniqueName('bystander')}\n`);
    await client.readLine();
  }
  // A flood from senders on both threads; a dropped sender connects again and goes on.
  // It lasts until stopped (bounded by perSender), so the kill always finds it running.
  const stop = stopper();
  const flooding = flood({ port, senders: 8, recipients: RECIPIENTS, pipeline: 32, perSender: PER_SENDER, reconnect: true, stop: stop.promise });
  await until(async () => (await server[kAcceptorRemotes]()).every(({ remotes }) => remotes.length > 2), 'both threads serve flood connections');
  const before = server.acceptors()[1];
  await server[kAcceptorPool]?.terminate(1);
  await until(() => server.acceptors()[1]?.ready === true, 'acceptor 1 is back');
  stop.resolve();
  const flooded = await flooding;

  for (const client of onWorker ?? []) t.true((await client.waitClosed()).trailing.length === 0, "the dead thread's connections are dropped");
  for (const client of onMain ?? []) t.true(await stillServed(client), "the other thread's connections are served");
  t.true(flooded.dropped > 0, 'flood senders on the dead thread were dropped');
  t.is(flooded.failed.size, 0);

  const after = server.acceptors()[1];
  t.is(after?.restarts, 1);
  t.not(after?.threadId, before?.threadId, 'a new thread');
  t.deepEqual(server.shards().map((shard) => shard.restarts), [0, 0], 'the shards carried on');
  t.true(
    errors.some(({ fields }) => fields.code === 'PH_ERR_ACCEPTOR_CRASHED' && fields.acceptor === 1),
    errors.map(({ line }) => line).join('\n'),
  );
  // The new thread serves new connections.
  const [, fresh] = await oneOnEach(server, connect);
  await fresh.send(`LOGIN ${uniqueName('fresh')}\n`);
  t.deepEqual(await fresh.lines(1), ['0']);
  // Every acknowledged message is there exactly once, each sender's in order.
  t.deepEqual(checkDelivery(await drain(port, RECIPIENTS), flooded, RECIPIENTS), []);
  // The dead thread's link (1, the pool's first) left nothing in the shards' journals.
  for (const shard of [0, 1]) {
    const db = new Database(join(dir, 'gen-1', `shard-${shard}.db`), { readonly: true });
    const left = db.prepare('SELECT COUNT(*) FROM journal WHERE seq >= ? AND seq < ?').pluck().get(2 ** 32, 2 ** 33);
    db.close();
    t.is(left, 0, `shard ${shard} forgot link 1`);
  }
});

// Serial: the listening thread is the test's own, and a test beside it that keeps it
// busy leaves the flood's connections to the other thread alone.
test.serial('a shard killed with batches from both threads in flight: each thread sends its own again, answered from the journal', async (t) => {
  const { logger, errors } = errorLog();
  const { server, port } = await startServer(t, { acceptors: 2, shards: 2, dataDir: dataDir(t), logger, ...ROOMY });
  const backend = server[kShardBackend] as WorkerShards;
  // Until stopped (bounded by perSender): the kill always finds both threads flooding.
  const stop = stopper();
  const flooding = flood({ port, senders: 8, recipients: RECIPIENTS, pipeline: 32, perSender: PER_SENDER, stop: stop.promise });
  await until(async () => (await server[kAcceptorRemotes]()).every(({ remotes }) => remotes.length > 1), 'both threads serve flood connections');
  await backend.terminate(0);
  await until(() => server.shards()[0]?.ready === true && server.shards()[0]?.restarts === 1, 'shard 0 is back');
  stop.resolve();
  const flooded = await flooding;

  t.is(server.shards()[0]?.restarts, 1);
  t.true(errors.some(({ fields }) => fields.shard === 0), 'the crash is logged');
  t.deepEqual(server.acceptors().map((acceptor) => acceptor.restarts), [0, 0], 'the acceptor threads carried on');
  // Unanswered batches of both threads went to the replacement: no COMPOSE failed, none was lost or doubled.
  t.is(flooded.failed.size, 0);
  t.true(flooded.acked.size > 0);
  t.is(flooded.acked.size, flooded.sent.size, 'every COMPOSE written was answered MESSAGE SENT');
  t.deepEqual(checkDelivery(await drain(port, RECIPIENTS), flooded, RECIPIENTS), []);
});

test('close() with clients on every thread: what they sent is answered, then every connection and thread ends', async (t) => {
  const { server, port, connect } = await startServer(t, { acceptors: 2, shards: 2 });
  const threads = [...server.acceptors().slice(1), ...server.shards()].map((info) => info.threadId as number);
  const byAcceptor = await clientsOnEvery(server, connect, 2);
  const clients = byAcceptor.flat();
  const names = clients.map(() => uniqueName('closing'));
  await Promise.all(clients.map((client, i) => client.send(`LOGIN ${names[i]}\n`)));
  for (const client of clients) t.deepEqual(await client.lines(1), ['0']);
  // A pipeline on every connection, written right before close().
  const composes = 200;
  await Promise.all(clients.map((client, i) => client.send(Buffer.concat(Array.from({ length: composes }, (_, n) => compose(names[(i + 1) % names.length] as string, `m${n}`))))));
  const where = await acceptorsOf(server, clients);
  t.true(where.includes(0) && where.includes(1));
  // Once both threads have read every COMPOSE, close(): each is answered before its connection ends.
  const composed = async (): Promise<number> => {
    const { values } = await (server.metrics.getSingleMetric('pigeonhole_commands_total') as { get(): Promise<{ values: { value: number; labels: { command?: string } }[] }> }).get();
    return values.find((value) => value.labels.command === 'compose')?.value ?? 0;
  };
  await until(async () => (await composed()) === clients.length * composes, 'both threads have read every COMPOSE');
  await server.close();

  for (const client of clients) {
    const closed = await client.waitClosed();
    t.is(closed.trailing.toString('latin1'), 'MESSAGE SENT\n'.repeat(composes), 'every COMPOSE answered, then the close');
  }
  await t.throwsAsync(LineClient.connect(port), { code: 'ECONNREFUSED' });
  const live = liveThreadIds();
  for (const id of threads) t.false(live.includes(id), `thread ${id} has exited`);
});
