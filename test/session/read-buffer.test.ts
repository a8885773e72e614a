import { once } from 'node:events';
import { type Socket, connect, createServer } from 'node:net';
import test from 'ava';
import { readIntoShared } from '../../lib/session/read-buffer.js';

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
  t.teardown(() => server.close());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const client = connect({ host: '127.0.0.1', port: typeof address === 'object' && address !== null ? address.port : 0 });
  t.teardown(() => client.destroy());
  await once(client, 'connect');
  client.write('first\n');
  for (let i = 0; i < 100 && reads.length < 1; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  client.write('second\n');
  for (let i = 0; i < 100 && reads.length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  t.true(wired);
  t.deepEqual(reads, [
    { bytes: 'first\n', same: true },
    { bytes: 'second\n', same: true },
  ]);
  t.is(dataEvents, 0);
  // Pause and resume still work (they stop and start the handle's reads).
  (accepted as Socket | null)?.pause();
  client.write('third\n');
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.is(reads.length, 2, 'nothing is read while paused');
  (accepted as Socket | null)?.resume();
  for (let i = 0; i < 100 && reads.length < 3; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  t.is(reads[2]?.bytes, 'third\n');
});

test('a socket that is already reading is left as it is', async (t) => {
  const server = createServer((socket) => {
    // Not paused on connect: reading has begun, and with it the stream's own reads.
    t.false(readIntoShared(socket, Buffer.alloc(64), () => t.fail('no shared reads')));
    socket.end('bye\n');
  });
  t.teardown(() => server.close());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const client = connect({ host: '127.0.0.1', port: typeof address === 'object' && address !== null ? address.port : 0 });
  t.teardown(() => client.destroy());
  const [reply] = (await once(client, 'data')) as [Buffer];
  t.is(reply.toString(), 'bye\n');
});
