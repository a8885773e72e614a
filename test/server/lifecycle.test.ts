// The server's life: listen and handle, idle timeouts, close with clients connected,
// worker threads, and a shard that crashes under load.
import { existsSync } from 'node:fs';
import type { Socket } from 'node:net';
import { threadId as mainThreadId } from 'node:worker_threads';
import test from 'ava';
import { type Logger, formatLine, silentLogger } from '../../lib/logger.js';
import { createServer, kShardBackend } from '../../lib/server.js';
import { WorkerShards } from '../../lib/shards/worker-shards.js';
import { compose, LineClient, type ReadReply, tick, until } from '../helpers/line-client.js';
import { forEachShards, handOver, HOST, startServer, nameOnShard, uniqueName } from '../helpers/server.js';

/** Thread ids of the worker threads alive in this process right now. */
function liveThreadIds(): number[] {
  const report = process.report.getReport() as { workers?: { header?: { threadId?: number } }[] };
  return (report.workers ?? []).map((worker) => worker.header?.threadId).filter((id): id is number => typeof id === 'number');
}


forEachShards(test, 'listen({ port: 0 }) resolves the address it bound', async (t, shards) => {
  const server = createServer({ shards, logger: silentLogger });
  t.teardown(() => server.close());
  t.is(server.address, null);
  const address = await server.listen({ port: 0, host: HOST });
  t.is(address.address, HOST);
  t.is(address.family, 'IPv4');
  t.true(address.port > 0 && address.port < 65_536);
  t.deepEqual(server.address, address);

  const client = await LineClient.connect(address.port);
  t.teardown(() => client.destroy());
  await client.send('LOGIN someone\n');
  t.deepEqual(await client.lines(1), ['0']);
});

test('two listen() calls at once: one listens, the other is refused, and close() ends it all', async (t) => {
  const server = createServer({ shards: 1, logger: silentLogger });
  const [first, second] = await Promise.allSettled([server.listen({ port: 0, host: HOST }), server.listen({ port: 0, host: HOST })]);
  t.is(first.status, 'fulfilled');
  t.is(second.status, 'rejected');
  t.is(second.status === 'rejected' ? (second.reason as { code?: string }).code : undefined, 'PH_ERR_SERVER_LISTENING');
  await server.close();
  // Nothing was left listening: the one port it bound is free again.
  const port = first.status === 'fulfilled' ? first.value.port : 0;
  const probe = createServer({ shards: 0, logger: silentLogger });
  t.teardown(() => probe.close());
  t.is((await probe.listen({ port, host: HOST })).port, port);
});

// A host that closes the server while listen() still waits (a signal during startup):
// listen() must fail as after close(), and leave nothing listening or running behind.
for (const acceptors of [1, 2]) {
  test(`close() while listen() starts the shards: listen() fails and nothing is left listening (acceptors ${acceptors})`, async (t) => {
    const server = createServer({ shards: 1, acceptors, logger: silentLogger });
    const listening = server.listen({ port: 0, host: HOST });
    await server.close();
    const error = await t.throwsAsync(listening);
    t.is((error as { code?: string }).code, 'PH_ERR_SERVER_CLOSED');
    t.is(server.address, null);
    t.deepEqual(server.acceptors().slice(1), [], 'no acceptor thread started');
  });
}

forEachShards(test.serial, 'a peer that takes none of its replies is cut one idle period after the graceful close', async (t, shards) => {
  // Long enough that the filler below, busy the whole time, is never idle on a loaded
  // machine; the sink is idle from its first byte on.
  const server = createServer({ shards, logger: silentLogger, idleTimeoutMs: 1_000, maxLineBytes: 70_000 });
  t.teardown(() => server.close());
  const { port, sockets } = await handOver(t, server);
  const writer = await LineClient.connect(port);
  t.teardown(() => writer.destroy());
  // Replies big enough to fill the kernel's buffers both ways, so the server's writes stall.
  const big = 'x'.repeat(60_000);
  await writer.send('LOGIN filler\n');
  await writer.lines(1);
  for (let chunk = 0; chunk < 6; chunk++) {
    await writer.send(`COMPOSE sink\n${big}\n`.repeat(50));
    await writer.lines(50, 20_000);
  }
  const sink = await LineClient.connect(port);
  t.teardown(() => sink.destroy());
  sink.pauseReading();
  await sink.send(`LOGIN sink\n${'READ\n'.repeat(300)}`);
  const deadline = Date.now() + 10_000;
  const serverSide = sockets[1];
  while (Date.now() < deadline && serverSide !== undefined && !serverSide.destroyed) await tick(50);
  t.true(serverSide?.destroyed, 'the server destroyed the socket of a peer that took nothing');
});

forEachShards(test, 'handle(socket) serves sockets accepted by the host application', async (t, shards) => {
  const server = createServer({ shards, logger: silentLogger });
  t.teardown(() => server.close());
  const { port } = await handOver(t, server);
  t.is(server.address, null, 'the pigeonhole server itself never listened');

  const alice = await LineClient.connect(port);
  const bob = await LineClient.connect(port);
  t.teardown(() => alice.destroy());
  t.teardown(() => bob.destroy());
  await alice.send(Buffer.concat([Buffer.from('LOGIN alice\n'), compose('bob', 'via handle()')]));
  t.deepEqual(await alice.lines(2), ['0', 'MESSAGE SENT']);
  await bob.send('LOGIN bob\nREAD\nEXIT\n');
  t.deepEqual(await bob.lines(3), ['1', 'alice', 'via handle()']);
  t.is((await bob.waitClosed()).trailing.length, 0);

  // Once closed, the server turns away sockets it is handed.
  await alice.send('EXIT\n');
  await server.close();
  const late = await LineClient.connect(port);
  t.teardown(() => late.destroy());
  await late.send('LOGIN late\n');
  t.is((await late.waitClosed()).trailing.length, 0);
});

// A host hands a socket over while the shards start, and the start then fails (here a
// Redis shard with nothing listening at its address): the command it sent waits on a shard
// that will never be replaced. It is failed (the connection dropped, with no answer), and
// the server's close() ends instead of waiting for it for ever.
test('a command waiting on a shard whose first start fails drops its connection, and close() ends', async (t) => {
  const server = createServer({ shards: 1, redis: { url: 'redis://127.0.0.1:1' }, logger: silentLogger });
  const { port } = await handOver(t, server);
  const alice = await LineClient.connect(port);
  t.teardown(() => alice.destroy());
  await alice.send('LOGIN alice\n');
  t.is((await alice.waitClosed()).trailing.length, 0, 'no answer, the connection dropped');
  // It settles: nothing is left waiting on the shard that never started.
  await server.close();
});

const IDLE_TIMEOUT_MS = 300;
// A pause between two sends that the test makes well under the idle timeout. When the
// whole process stalls (a loaded CI box) for longer than this, a close is not evidence.
const STALL_MS = 150;

/** READs every 50 ms for ~1.5 s (five idle timeouts); the largest gap between two sends. */
async function keepTalking(client: LineClient): Promise<{ closed: boolean; maxGapMs: number }> {
  let last = Date.now();
  let maxGapMs = 0;
  for (let i = 0; i < 30; i++) {
    await tick(50);
    maxGapMs = Math.max(maxGapMs, Date.now() - last);
    last = Date.now();
    try {
      await client.send('READ\n');
      const [reply] = await client.lines(1);
      if (reply !== 'READ ERROR') throw new Error(`READ answered ${String(reply)}`);
    } catch (err) {
      if (client.closed) return { closed: true, maxGapMs };
      throw err;
    }
  }
  return { closed: client.closed, maxGapMs };
}

// Serial: ava runs serial tests before the concurrent ones, so no other test in this
// process stalls the event loop for a whole idle timeout while this one runs.
forEachShards(test.serial, 'an idle connection is closed after idleTimeoutMs; one that keeps sending is not', async (t, shards) => {
  const { connect } = await startServer(t, { shards, idleTimeoutMs: IDLE_TIMEOUT_MS });
  const silent = await connect();
  const quiet = await connect(); // says something, then goes quiet
  await quiet.send(`LOGIN ${uniqueName('quiet')}\nREAD\n`);
  t.deepEqual(await quiet.lines(2), ['0', 'READ ERROR']);

  let chatty: LineClient | null = null;
  for (let attempt = 1; attempt <= 3 && chatty === null; attempt++) {
    const client = await connect();
    await client.send(`LOGIN ${uniqueName('chatty')}\n`);
    t.deepEqual(await client.lines(1), ['0']);
    const { closed, maxGapMs } = await keepTalking(client);
    if (!closed) chatty = client;
    else if (maxGapMs >= STALL_MS) t.log(`attempt ${attempt}: the process stalled ${maxGapMs} ms between two sends; trying again`);
    else t.fail(`a connection that never went ${STALL_MS} ms without sending was closed`);
  }
  if (chatty === null) {
    t.fail('the process stalled on every attempt');
    return;
  }
  for (const client of [silent, quiet]) {
    const closed = await client.waitClosed(3_000);
    t.is(closed.trailing.length, 0, 'the idle close sends nothing');
  }
  // Now silent, the chatty one goes the same way.
  t.is((await chatty.waitClosed(3_000)).trailing.length, 0);
});

forEachShards(test, 'close() answers the commands in flight, then closes every connection, and refuses new ones', async (t, shards) => {
  const server = createServer({ shards, logger: silentLogger });
  t.teardown(() => server.close());
  const { port: listenPort } = await server.listen({ port: 0, host: HOST });
  const { port: handPort, sockets } = await handOver(t, server);
  const threads = server.shards().map((shard) => shard.threadId);

  const idle = await LineClient.connect(listenPort);
  t.teardown(() => idle.destroy());
  await idle.send(`LOGIN ${uniqueName('idle')}\n`);
  t.deepEqual(await idle.lines(1), ['0']);

  // Through handle(), so the test sees when the server has read every byte sent. This
  // pipeline is small enough to be in flight as a whole once read (a few dozen READs,
  // far under maxInFlight commands).
  const busy = await LineClient.connect(handPort);
  t.teardown(() => busy.destroy());
  const me = uniqueName('busy');
  const composes = 300;
  const reads = 40;
  const wire = Buffer.concat([
    Buffer.from(`LOGIN ${me}\n`),
    ...Array.from({ length: composes }, (_, i) => compose(me, `m${i}`)),
    Buffer.from('READ\n'.repeat(reads)),
  ]);
  // A longer pipeline may be cut short by close(), but only between whole replies.
  const flood = await LineClient.connect(listenPort);
  t.teardown(() => flood.destroy());
  const floodUser = uniqueName('flood');
  await flood.send(`LOGIN ${floodUser}\n`);
  t.deepEqual(await flood.lines(1), ['0']);

  await busy.send(wire);
  // Not awaited: the server may well stop reading this one before the kernel takes it all.
  void flood.send(Buffer.concat(Array.from({ length: 20_000 }, (_, i) => compose(floodUser, `f${i}`)))).catch(() => {});
  const serverSide = sockets[0] as Socket;
  await until(() => serverSide.bytesRead === wire.length, 'the server has read the whole pipeline', 5_000);
  const closing = server.close();

  const expected = ['0', ...Array.from({ length: composes }, () => 'MESSAGE SENT')];
  for (let i = 0; i < reads; i++) expected.push(me, `m${i}`);
  t.deepEqual(await busy.lines(expected.length, 10_000), expected);
  t.is((await busy.waitClosed()).trailing.length, 0);
  t.is((await idle.waitClosed()).trailing.length, 0);
  const floodClosed = await flood.waitClosed(10_000);
  const floodReplies = floodClosed.trailing.toString('latin1');
  // The mailbox holds 1024 (the default maximum); later COMPOSEs fail.
  t.regex(floodReplies, /^(MESSAGE SENT\n){0,1024}(MESSAGE FAILED\n)*$/, 'whole replies only, then the close');
  t.log(`flood: ${floodReplies.length === 0 ? 0 : floodReplies.split('\n').length - 1} of 20000 COMPOSEs answered before the close`);
  await closing;

  await t.throwsAsync(LineClient.connect(listenPort), { code: 'ECONNREFUSED' });
  if (shards > 0) {
    const live = liveThreadIds();
    for (const id of threads) t.false(live.includes(id as number), `shard thread ${id} has exited`);
  }
});

test('shards: 2 runs two worker threads; shards: 0 runs inline', async (t) => {
  const two = await startServer(t, { shards: 2 });
  const info = two.server.shards();
  t.is(info.length, 2);
  t.deepEqual(info.map((shard) => [shard.shardId, shard.restarts, shard.ready]), [[0, 0, true], [1, 0, true]]);
  const ids = info.map((shard) => shard.threadId);
  for (const id of ids) {
    t.is(typeof id, 'number');
    t.not(id, mainThreadId);
  }
  t.not(ids[0], ids[1]);
  const live = liveThreadIds();
  for (const id of ids) t.true(live.includes(id as number), `thread ${id} is alive`);
  if (process.platform === 'linux') {
    // The operating system's thread ids: two threads of this process.
    const tids = info.map((shard) => shard.tid);
    t.not(tids[0], tids[1]);
    for (const tid of tids) t.true(existsSync(`/proc/${process.pid}/task/${tid}`), `task ${tid} is a thread of this process`);
  }

  const inline = await startServer(t, { shards: 0 });
  t.deepEqual(inline.server.shards(), [{ shardId: 0, threadId: null, tid: null, restarts: 0, ready: true }]);
});

test('a crashed shard is restarted; pending work on it is answered safely and the server keeps serving', async (t) => {
  const errors: string[] = [];
  const logger: Logger = { info: () => {}, warn: () => {}, error: (fields, message) => errors.push(formatLine(fields, message)) };
  const { server, connect } = await startServer(t, { shards: 2, logger, maxMessagesPerUser: 100_000 });
  const backend = server[kShardBackend];
  if (!(backend instanceof WorkerShards)) throw new Error('shards: 2 should run on WorkerShards');

  const victim = nameOnShard('victim', 0);
  const sender = nameOnShard('sender', 1);
  const safe = nameOnShard('safe', 1);
  const a = await connect();
  await a.send(Buffer.concat([Buffer.from(`LOGIN ${sender}\n`), compose(safe, 'survives')]));
  t.deepEqual(await a.lines(2), ['0', 'MESSAGE SENT']);
  const b = await connect();
  await b.send(`LOGIN ${victim}\n`);
  t.deepEqual(await b.lines(1), ['0']);
  const c = await connect();
  const before = server.shards();

  // A storm on shard 0 right before it dies, so work is pending there when it does.
  const composes = 3000;
  const reads = 2000;
  await Promise.all([
    a.send(Buffer.concat(Array.from({ length: composes }, (_, i) => compose(victim, `m${i}`)))),
    b.send('READ\n'.repeat(reads)),
    c.send(`LOGIN ${victim}\n`),
  ]);
  const firstReply = (await a.readLine()).toString('latin1');
  await backend.terminate(0);

  // The composer is never dropped: every COMPOSE is answered SENT or FAILED.
  const composeReplies = [firstReply, ...(await a.lines(composes - 1, 20_000))];
  t.true(composeReplies.every((reply) => reply === 'MESSAGE SENT' || reply === 'MESSAGE FAILED'));
  const failed = new Set(composeReplies.flatMap((reply, i) => (reply === 'MESSAGE FAILED' ? [i] : [])));

  // The reader gets correct READ replies, oldest first, possibly cut off by a drop.
  const got: (ReadReply | null)[] = [];
  for (let i = 0; i < reads; i++) {
    const first = await b.readLine(20_000).catch(() => null);
    if (first === null) {
      t.true(b.closed, 'the reader was neither answered nor dropped');
      t.is(b.buffered.length, 0, 'a drop never leaves part of a line');
      break;
    }
    if (first.toString('latin1') === 'READ ERROR') {
      got.push(null);
      continue;
    }
    const body = await b.readLine(20_000).catch(() => null);
    if (body === null) {
      t.fail(`the reader got a sender line (${first.toString('latin1')}) without its message`);
      break;
    }
    got.push({ from: first.toString('latin1'), body: body.toString('latin1') });
  }
  const read = got.filter((reply) => reply !== null).map((reply) => {
    t.is(reply.from, sender);
    return Number(reply.body.slice(1));
  });
  for (let i = 1; i < read.length; i++) t.true((read[i] as number) > (read[i - 1] as number), 'FIFO, no message twice');
  for (const index of read) t.false(failed.has(index), `m${index} was read though its COMPOSE was answered MESSAGE FAILED`);

  // The LOGIN sent in the storm was answered with a count, or its connection dropped.
  const login = await c.readLine(10_000).then(
    (line) => line.toString('latin1'),
    () => null,
  );
  if (login === null) {
    t.true(c.closed, 'the LOGIN was neither answered nor its connection dropped');
    t.is(c.buffered.length, 0);
  } else {
    t.regex(login, /^\d+$/);
  }
  t.log(`storm: ${failed.size}/${composes} COMPOSEs failed, ${got.length}/${reads} READs answered (${read.length} messages), LOGIN ${login ?? 'dropped'}`);

  // Supervision: shard 0 restarted on a new thread, shard 1 untouched, the crash logged.
  await until(() => server.shards()[0]?.restarts === 1 && server.shards()[0]?.threadId !== null, 'shard 0 has restarted', 10_000);
  const after = server.shards();
  t.not(after[0]?.threadId, before[0]?.threadId);
  t.deepEqual(after[1], before[1]);
  t.false(liveThreadIds().includes(before[0]?.threadId as number), 'the killed thread is gone');
  t.true(errors.some((message) => /shard 0\b/.test(message)), `logged: ${JSON.stringify(errors)}`);

  // The composer's connection is still usable, and a new one is served on both shards.
  const fresh0 = nameOnShard('fresh', 0);
  await a.send(compose(fresh0, 'after the crash'));
  t.deepEqual(await a.lines(1), ['MESSAGE SENT']);
  const d = await connect();
  await d.send(Buffer.concat([Buffer.from(`LOGIN ${fresh0}\n`), compose(safe, 'second'), Buffer.from('READ\nREAD\n')]));
  t.deepEqual(await d.lines(5), ['1', 'MESSAGE SENT', sender, 'after the crash', 'READ ERROR']);
  const e = await connect();
  await e.send(`LOGIN ${safe}\nREAD\nREAD\n`);
  t.deepEqual(await e.lines(5), ['2', sender, 'survives', fresh0, 'second']);
});
