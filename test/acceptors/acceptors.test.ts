// Two acceptor threads in front of two worker shards, over TCP on 127.0.0.1: which
// thread serves a connection, how connections spread, one user and one sender across
// both threads, limits, backpressure, idle connections and TLS on either thread, and the
// metrics summed over both. (Supervision and close: supervision.test.ts; the protocol
// and pipelining suites on acceptors: protocol.test.ts, pipelining.test.ts here.)
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { TLSSocket } from 'node:tls';
import test from 'ava';
import { acceptorsOf, acceptorsOfPeers, clientsOnEvery, isThreadOfThisProcess, oneOnEach } from '../helpers/acceptors.js';
import { makeTestCertificates } from '../helpers/certs.js';
import { type LineClient, compose, readReplies, tick, until } from '../helpers/line-client.js';
import { startServer, uniqueName } from '../helpers/server.js';
import { connectTls } from '../helpers/tls.js';

const TWO = { acceptors: 2, shards: 2 } as const;

/** How many of `where` each acceptor has. */
function shares(where: readonly number[], acceptors = 2): number[] {
  return Array.from({ length: acceptors }, (_, acceptor) => where.filter((at) => at === acceptor).length);
}

/** A metric's value as the registry reports it now (summed over every acceptor thread). */
async function metric(server: { metrics: { getSingleMetric(name: string): unknown } }, name: string, labels: Record<string, string> = {}): Promise<number> {
  const found = server.metrics.getSingleMetric(`pigeonhole_${name}`) as { get(): Promise<{ values: { value: number; labels: Record<string, string | number> }[] }> };
  const { values } = await found.get();
  const match = values.find((value) => Object.entries(labels).every(([key, wanted]) => String(value.labels[key]) === wanted));
  return match?.value ?? 0;
}

// Serial, as the burst below: which thread accepts depends on the listening thread,
// the test's own, not being held by a test beside it.
test.serial('connections are served by two threads: each answers its own, and the metrics sum both', async (t) => {
  const { server, connect } = await startServer(t, TWO);
  const info = server.acceptors();
  t.deepEqual(info.map((acceptor) => [acceptor.acceptor, acceptor.restarts, acceptor.ready]), [[0, 0, true], [1, 0, true]]);
  t.not(info[0]?.threadId, info[1]?.threadId, 'two threads');
  if (process.platform === 'linux') {
    t.not(info[0]?.tid, info[1]?.tid);
    for (const { tid } of info) t.true(isThreadOfThisProcess(tid as number), `task ${tid} is a thread of this process`);
  }

  const clients = await Promise.all(Array.from({ length: 30 }, () => connect()));
  // Each thread says which connections it holds (the answer comes from the thread itself).
  const where = await acceptorsOf(server, clients);
  const [onMain = 0, onWorker = 0] = shares(where);
  t.log(`30 connections: ${onMain} on the listening thread, ${onWorker} on the other`);
  t.true(onMain > 0 && onWorker > 0, `both threads serve connections (${onMain}/${onWorker})`);

  // A ring of messages: each client writes to the next, whichever thread each is on.
  const names = clients.map(() => uniqueName('ring'));
  await Promise.all(clients.map((client, i) => client.send(`LOGIN ${names[i]}\n`)));
  for (const client of clients) t.deepEqual(await client.lines(1), ['0']);
  await Promise.all(clients.map((client, i) => client.send(compose(names[(i + 1) % names.length] as string, `from ${i}`))));
  for (const client of clients) t.deepEqual(await client.lines(1), ['MESSAGE SENT']);
  await Promise.all(clients.map((client) => client.send('READ\n')));
  for (const [i, client] of clients.entries()) {
    const from = (i + clients.length - 1) % clients.length;
    t.deepEqual(await readReplies(client, 1), [{ from: names[from], body: `from ${from}` }]);
  }

  t.is(await metric(server, 'connections_open'), 30);
  t.is(await metric(server, 'commands_total', { command: 'login' }), 30);
  t.is(await metric(server, 'commands_total', { command: 'compose' }), 30);
  t.is(await metric(server, 'replies_total', { kind: 'read_message' }), 30);
  t.is(await metric(server, 'acceptor_up', { acceptor: '1' }), 1);
  // Every batch either thread sent is in the histogram.
  const batches = (await (server.metrics.getSingleMetric('pigeonhole_shard_batch_commands') as { get(): Promise<{ values: { value: number; metricName?: string }[] }> }).get()).values
    .filter((value) => value.metricName === 'pigeonhole_shard_batch_commands_sum')
    .reduce((sum, value) => sum + value.value, 0);
  t.is(batches, 90, 'LOGIN, COMPOSE and READ of 30 connections, in batches from both threads');
});

// Run by a child process, as real clients are: opens N connections at once, prints the
// local host:port of each, and holds them until its stdin closes.
const BURST = `
const net = require('node:net');
const [port, n] = process.argv.slice(1).map(Number);
const sockets = Array.from({ length: n }, () => net.connect({ port, host: '127.0.0.1' }));
Promise.all(sockets.map((socket) => new Promise((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject); })))
  .then(() => process.stdout.write(JSON.stringify(sockets.map((socket) => socket.localAddress + ':' + socket.localPort)) + '\\n'));
process.stdin.resume().on('end', () => process.exit(0));
`;

// Serial: the listening thread here is the test's own, and a test beside it that holds
// that thread for a second would leave the burst to the other acceptor.
test.serial('a burst of 200 connections from another process splits within 25% of even between the two threads', async (t) => {
  const { server, port } = await startServer(t, TWO);
  const child = spawn(process.execPath, ['-e', BURST, String(port), '200'], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => child.kill());
  const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
  const [first = 0, second = 0] = shares(await acceptorsOfPeers(server, JSON.parse(line) as string[]));
  t.log(`200 connections: ${first} / ${second}`);
  for (const share of [first, second]) t.true(share >= 75 && share <= 125, `${first}/${second}`);
});

test("one user's connections on both threads get each message exactly once, each connection's oldest first", async (t) => {
  const { server, connect } = await startServer(t, TWO);
  const user = uniqueName('shared');
  const sender = uniqueName('sender');
  const total = 300;
  const composer = await connect();
  await composer.send(Buffer.concat([Buffer.from(`LOGIN ${sender}\n`), ...Array.from({ length: total }, (_, i) => compose(user, `m${i}`))]));
  t.true((await composer.lines(total + 1)).slice(1).every((line) => line === 'MESSAGE SENT'));

  const readers = (await clientsOnEvery(server, connect, 2)).flat();
  await Promise.all(readers.map((reader) => reader.send(`LOGIN ${user}\n`)));
  for (const reader of readers) t.deepEqual(await reader.lines(1), [String(total)]);
  // Together they ask for more than there is, all pipelined at once.
  const perReader = Math.ceil((total * 1.5) / readers.length);
  await Promise.all(readers.map((reader) => reader.send('READ\n'.repeat(perReader))));
  const results = await Promise.all(readers.map((reader) => readReplies(reader, perReader)));
  const seen: number[] = [];
  for (const replies of results) {
    const mine = replies.filter((reply) => reply !== null).map((reply) => Number(reply.body.slice(1)));
    t.deepEqual(mine, [...mine].sort((x, y) => x - y), 'each connection gets its share oldest first');
    seen.push(...mine);
  }
  t.deepEqual([...seen].sort((x, y) => x - y), Array.from({ length: total }, (_, i) => i), 'every message exactly once');
});

test("each sender's messages stay in order in a mailbox, whichever threads the senders and the reader are on", async (t) => {
  const { server, connect } = await startServer(t, { ...TWO, maxMessagesPerUser: 100_000 });
  const recipient = uniqueName('inbox');
  const senders = (await clientsOnEvery(server, connect, 2)).flat();
  const names = senders.map(() => uniqueName('fifo'));
  const each = 150;
  await Promise.all(senders.map((sender, s) => sender.send(`LOGIN ${names[s]}\n`)));
  for (const sender of senders) await sender.lines(1);
  // Every sender pipelines its messages at once: the threads' batches interleave at the shard.
  await Promise.all(senders.map((sender) => sender.send(Buffer.concat(Array.from({ length: each }, (_, i) => compose(recipient, String(i)))))));
  for (const sender of senders) t.true((await sender.lines(each)).every((line) => line === 'MESSAGE SENT'));

  const reader = await connect();
  const total = senders.length * each;
  await reader.send(`LOGIN ${recipient}\n${'READ\n'.repeat(total + 1)}`);
  t.deepEqual(await reader.lines(1), [String(total)]);
  const replies = await readReplies(reader, total + 1);
  t.is(replies.at(-1), null, 'then the mailbox is empty');
  const bySender = new Map<string, number[]>();
  for (const reply of replies.slice(0, total)) {
    if (reply === null) return t.fail('a READ ERROR before the mailbox was empty');
    bySender.set(reply.from, [...(bySender.get(reply.from) ?? []), Number(reply.body)]);
  }
  for (const name of names) t.deepEqual(bySender.get(name), Array.from({ length: each }, (_, i) => i), `${name}'s messages, in order`);
});

test('maxConnectionRatePerIp holds for the server, not per thread', async (t) => {
  const { server, connect } = await startServer(t, { ...TWO, maxConnectionRatePerIp: 4 });
  const clients = await Promise.all(Array.from({ length: 10 }, () => connect()));
  const answers = await Promise.all(
    clients.map(async (client) => {
      await client.send(`LOGIN ${uniqueName('rate')}\n`).catch(() => {});
      return client.readLine().then(String, () => null);
    }),
  );
  // Counted per thread, each would have let four in, eight in all. (Four exactly, unless
  // two threads took the last place at the same instant and both stepped back, or the
  // burst straddled a second and the next one's share let a fifth in.)
  const letIn = answers.filter((answer) => answer === '0').length;
  t.true(letIn >= 3 && letIn <= 5, `${letIn} let in, whichever threads took them`);
  await until(() => server.limitCounts.refusedRatePerIp === 10 - letIn, 'the refusals of both threads are counted');
  t.is(await metric(server, 'connections_rejected_total', { reason: 'max_connection_rate_per_ip' }), 10 - letIn);
});

test('maxConnectionsPerIp and maxConnections hold for the server, not per thread; limitCounts sums the threads', async (t) => {
  const { server, connect } = await startServer(t, { ...TWO, maxConnectionsPerIp: 4 });
  const held = await Promise.all(Array.from({ length: 4 }, () => connect()));
  for (const client of held) {
    await client.send(`LOGIN ${uniqueName('held')}\n`);
    t.deepEqual(await client.lines(1), ['0']);
  }
  // Every later connection from 127.0.0.1 is turned away, whichever thread accepts it.
  const turnedAway = await Promise.all(Array.from({ length: 6 }, () => connect()));
  for (const client of turnedAway) t.is((await client.waitClosed()).trailing.length, 0);
  await until(() => server.limitCounts.refusedPerIp === 6, 'the refusals of both threads are counted');
  t.is(server.limitCounts.refusedConnections, 0);
  // A close on either thread makes room on any.
  held[0]?.destroy();
  await until(async () => (await metric(server, 'connections_open')) === 3, 'the close is counted');
  const again = await connect();
  await again.send(`LOGIN ${uniqueName('again')}\n`);
  t.deepEqual(await again.lines(1), ['0']);

  const small = await startServer(t, { ...TWO, maxConnections: 3 });
  const three = await Promise.all(Array.from({ length: 3 }, () => small.connect()));
  for (const client of three) {
    await client.send(`LOGIN ${uniqueName('three')}\n`);
    t.deepEqual(await client.lines(1), ['0']);
  }
  const fourth = await small.connect();
  t.is((await fourth.waitClosed()).trailing.length, 0);
  t.is(small.server.limitCounts.refusedConnections, 1);
});

test('a client that writes without reading is held back on the other thread too, and loses nothing', async (t) => {
  const { server, connect } = await startServer(t, TWO);
  const user = uniqueName('hoarder');
  const messages = 150;
  const body = (i: number): Buffer => Buffer.concat([Buffer.from(`#${i}#`), Buffer.alloc(60_000, 0x61 + (i % 26))]);
  const filler = await connect();
  await filler.send(Buffer.concat([Buffer.from(`LOGIN ${uniqueName('filler')}\n`), ...Array.from({ length: messages }, (_, i) => compose(user, body(i)))]));
  t.true((await filler.lines(messages + 1, 20_000)).slice(1).every((line) => line === 'MESSAGE SENT'));

  const [, hoarder] = await oneOnEach(server, connect);
  await hoarder.send(`LOGIN ${user}\n`);
  t.deepEqual(await hoarder.lines(1), [String(messages)]);
  const bytesBefore = await metric(server, 'received_bytes_total');
  hoarder.pauseReading();
  const reads = 100_000;
  hoarder.socket.write('READ\n'.repeat(reads));
  // The replies (9 MB) outgrow the socket buffers; then the thread stops reading.
  let received = 0;
  let steady = 0;
  for (let i = 0; i < 100 && steady < 10; i++) {
    await tick(30);
    const now = (await metric(server, 'received_bytes_total')) - bytesBefore;
    steady = now === received ? steady + 1 : 0;
    received = now;
  }
  t.log(`the thread read ${received} of ${reads * 5} bytes while its client did not read`);
  t.true(received < (reads * 5) / 2, `it stopped reading (${received} bytes read)`);

  hoarder.resumeReading();
  for (let i = 0; i < messages; i++) {
    const from = await hoarder.readLine(10_000);
    const message = await hoarder.readLine(10_000);
    if (!message.equals(body(i)) || from.length === 0) return t.fail(`reply ${i} is not message #${i}`);
  }
  for (let i = messages; i < reads; i++) {
    if ((await hoarder.readLine(10_000)).toString() !== 'READ ERROR') return t.fail(`reply ${i} is not READ ERROR`);
  }
  t.pass();
});

test('idle connections are closed on both threads', async (t) => {
  // Long enough that finding one connection on each thread (a few tries, slow on a
  // loaded machine) ends before the first of them is closed.
  const { server, connect } = await startServer(t, { ...TWO, idleTimeoutMs: 5_000 });
  for (const client of await oneOnEach(server, connect)) t.is((await client.waitClosed(20_000)).trailing.length, 0);
});

test('TLS on both threads: the identity rule holds on each, and reloadTls reaches them all', async (t) => {
  const certs = makeTestCertificates();
  t.teardown(() => certs.remove());
  const { server, port } = await startServer(t, { ...TWO, tls: { certFile: certs.server.certFile, keyFile: certs.server.keyFile, caFile: certs.caFile } });
  const alice = { ca: certs.ca, cert: certs.alice.cert, key: certs.alice.key, servername: 'localhost' };
  const serial = (client: LineClient): string => (client.socket as TLSSocket).getPeerCertificate().serialNumber;

  const [onMain, onWorker] = await oneOnEach(server, () => connectTls(t, port, alice));
  for (const client of [onMain, onWorker]) {
    await client.send('LOGIN alice\n');
    t.deepEqual(await client.lines(1), ['0']);
  }
  // Logging in as someone else with alice's certificate drops the connection, on either thread.
  for (const client of await oneOnEach(server, () => connectTls(t, port, alice))) {
    await client.send('LOGIN bob\n');
    t.is((await client.waitClosed()).trailing.length, 0);
  }

  const before = serial(onMain);
  await server.reloadTls({ certFile: certs.server2.certFile, keyFile: certs.server2.keyFile, caFile: certs.caFile });
  for (const client of await oneOnEach(server, () => connectTls(t, port, alice))) t.not(serial(client), before, 'the new certificate, on either thread');
  // Connections made before the reload carry on.
  await onWorker.send('READ\n');
  t.deepEqual(await onWorker.lines(1), ['READ ERROR']);
});
