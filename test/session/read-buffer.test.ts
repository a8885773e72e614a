import { once } from 'node:events';
import { type AddressInfo, type Server, type Socket, connect, createServer } from 'node:net';
import test, { type ExecutionContext } from 'ava';
import { readIntoShared } from '../../lib/session/read-buffer.js';
import { clientsOnEvery } from '../helpers/acceptors.js';
import { HOST, type LineClient, compose, tick, until } from '../helpers/line-client.js';
import { startServer, uniqueName } from '../helpers/server.js';

/** Listens on a free loopback port and connects a client to it; both end with the test. */
async function connectTo(t: ExecutionContext, server: Server): Promise<Socket> {
  t.teardown(() => server.close());
  server.listen(0, HOST);
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const client = connect({ host: HOST, port });
  t.teardown(() => client.destroy());
  return client;
}

test('a socket accepted paused reads into the shared buffer: no Buffer and no data event per read', async (t) => {
  const shared = Buffer.alloc(1024);
  const reads: { bytes: string; same: boolean }[] = [];
  let dataEvents = 0;
  let accepted: Socket | null = null;
  let wired = false;
  const server = createServer({ pauseOnConnect: true }, (socket) => {
    accepted = socket;
    wired = readIntoShared(socket, shared, (chunk) => reads.push({ bytes: chunk.toString('latin1'), same: chunk.buffer === shared.buffer }));
    socket.on('data', () => dataEvents++);
    socket.resume();
  });
  const client = await connectTo(t, server);
  await once(client, 'connect');
  client.write('first\n');
  await until(() => reads.length >= 1, 'read 1 arrived');
  client.write('second\n');
  await until(() => reads.length >= 2, 'read 2 arrived');
  t.true(wired);
  t.deepEqual(reads, [
    { bytes: 'first\n', same: true },
    { bytes: 'second\n', same: true },
  ]);
  t.is(dataEvents, 0);
  // Pause and resume still work (they stop and start the handle's reads).
  (accepted as Socket | null)?.pause();
  client.write('third\n');
  await tick(50);
  t.is(reads.length, 2, 'nothing is read while paused');
  (accepted as Socket | null)?.resume();
  await until(() => reads.length >= 3, 'read 3 arrived');
  t.is(reads[2]?.bytes, 'third\n');
});

test('a socket that is already reading is left as it is', async (t) => {
  const server = createServer((socket) => {
    // Not paused on connect: reading has begun, and with it the stream's own reads.
    t.false(readIntoShared(socket, Buffer.alloc(64), () => t.fail('no shared reads')));
    socket.end('bye\n');
  });
  const client = await connectTo(t, server);
  const [reply] = (await once(client, 'data')) as [Buffer];
  t.is(reply.toString(), 'bye\n');
});

// ---- End to end: connections of one acceptor thread sharing its read buffer ----------

/** A distinct body per sender and index, of varied lengths up to ~3,000 bytes, with bytes beyond ASCII. */
function body(who: string, i: number): string {
  const filler = String.fromCharCode(0x61 + (i % 26), 0xe0 + (i % 31)).repeat(1500);
  return `${who}#${i}:${filler.slice(0, (i * 7919) % 3000)}`;
}

/** Writes `bytes` in pieces cut at `cuts` (fractions of its length, each likely mid-line), without waiting in between. */
function sendCut(client: LineClient, bytes: Buffer, cuts: readonly number[]): void {
  let from = 0;
  for (const cut of [...cuts.map((fraction) => Math.floor(bytes.length * fraction)), bytes.length]) {
    client.socket.write(bytes.subarray(from, cut));
    from = cut;
  }
}

/**
 * `a` pipelines 200 COMPOSEs to itself, `b` at the same time 150 COMPOSE-then-READ pairs;
 * with maxInFlight 2 both pause mid-read again and again, while the other's reads land
 * in the buffer they share. Every body must come back byte for byte, in order.
 */
async function crossTraffic(a: LineClient, b: LineClient): Promise<void> {
  const userA = uniqueName('shared-a');
  const userB = uniqueName('shared-b');
  const fromA = Array.from({ length: 200 }, (_, i) => body(userA, i));
  const fromB = Array.from({ length: 150 }, (_, i) => body(userB, i));
  const streamA = Buffer.concat([Buffer.from(`LOGIN ${userA}\n`), ...fromA.map((text) => compose(userA, text))]);
  const streamB = Buffer.concat([Buffer.from(`LOGIN ${userB}\n`), ...fromB.flatMap((text) => [compose(userB, text), Buffer.from('READ\n')])]);
  sendCut(a, streamA, [0.7, 0.7003, 0.85]);
  sendCut(b, streamB, [0.5, 0.9]);
  const [repliesA, repliesB] = await Promise.all([a.lines(1 + fromA.length), b.lines(1 + 3 * fromB.length)]);
  sameLines("a's COMPOSE replies", repliesA, ['0', ...fromA.map(() => 'MESSAGE SENT')]);
  sameLines("b's replies", repliesB, ['0', ...fromB.flatMap((text) => ['MESSAGE SENT', userB, text])]);
  await a.send('READ\n'.repeat(fromA.length));
  sameLines("a's READ replies", await a.lines(2 * fromA.length), fromA.flatMap((text) => [userA, text]));
}

/** Throws at the first line that differs, showing both (a deepEqual of 600 lines would bury it). */
function sameLines(what: string, actual: readonly string[], expected: readonly string[]): void {
  const wrong = expected.findIndex((line, i) => actual[i] !== line);
  if (wrong !== -1) throw new Error(`${what}, line ${wrong}: ${JSON.stringify(actual[wrong]?.slice(0, 60))}, expected ${JSON.stringify(expected[wrong]?.slice(0, 60))}`);
}

test('two pipelining connections on one shared read buffer each get every byte they sent back, in order', async (t) => {
  const { connect } = await startServer(t, { maxInFlight: 2 });
  const [a, b] = await Promise.all([connect(), connect()]);
  await t.notThrowsAsync(crossTraffic(a as LineClient, b as LineClient));
});

test('the same on two acceptor threads over two shards, two connections on each thread', async (t) => {
  const { server, connect } = await startServer(t, { maxInFlight: 2, acceptors: 2, shards: 2 });
  const byThread = await clientsOnEvery(server, connect, 2);
  await t.notThrowsAsync(Promise.all(byThread.map(([a, b]) => crossTraffic(a as LineClient, b as LineClient))));
});
