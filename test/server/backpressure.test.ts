// PROTOCOL: a client that sends commands but never reads its replies must not make the
// server buffer without bound; the server stops reading from it until replies drain.
import type { Socket } from 'node:net';
import test from 'ava';
import { silentLogger } from '../../lib/logger.js';
import { createServer } from '../../lib/server.js';
import { compose, LineClient, tick } from '../helpers/line-client.js';
import { forEachShards, handOver } from '../helpers/server.js';

const MESSAGES = 200;
const MESSAGE_BYTES = 60_000;
const READS = 100_000;
// What the server may hold for one connection that reads nothing: a few MB, however much
// the client sends and however large the mailbox it drains (here 12 MB of messages).
const HELD_LIMIT_BYTES = 5 * 1024 * 1024;

function body(i: number): Buffer {
  const bytes = Buffer.alloc(MESSAGE_BYTES, 0x61 + (i % 26));
  bytes.write(`#${i}#`, 0, 'latin1');
  return bytes;
}

forEachShards(test, 'a client that writes 100k READs and never reads holds the server to bounded buffering, and loses nothing', async (t, shards) => {
  const server = createServer({ shards, logger: silentLogger });
  t.teardown(() => server.close());
  // The test accepts the sockets itself and hands them over, so it can watch the
  // server's side of the connection.
  const { port, sockets } = await handOver(t, server);
  const clients: LineClient[] = [];
  t.teardown(() => {
    for (const client of clients) client.destroy();
  });

  // ~12 MB of mail for `hoarder`, so replies overflow what loopback kernel buffers absorb.
  const filler = await LineClient.connect(port);
  clients.push(filler);
  await filler.send(Buffer.concat([Buffer.from('LOGIN filler\n'), ...Array.from({ length: MESSAGES }, (_, i) => compose('hoarder', body(i)))]));
  const filled = await filler.lines(MESSAGES + 1, 20_000);
  t.true(filled.slice(1).every((line) => line === 'MESSAGE SENT'));

  const client = await LineClient.connect(port);
  clients.push(client);
  await client.send('LOGIN hoarder\n');
  t.deepEqual(await client.lines(1), [String(MESSAGES)]);
  const serverSide = sockets[1] as Socket;
  client.pauseReading();
  const sent = Buffer.from('READ\n'.repeat(READS));
  client.socket.write(sent); // not awaited: the server is expected not to take it all

  // Watch the server side for a while (bounded): it stops reading and holds little.
  let maxHeld = 0;
  let lastRead = -1;
  let steady = 0;
  for (let i = 0; i < 100 && steady < 10; i++) {
    await tick(20);
    maxHeld = Math.max(maxHeld, serverSide.writableLength);
    steady = serverSide.bytesRead === lastRead ? steady + 1 : 0;
    lastRead = serverSide.bytesRead;
  }
  const readByServer = serverSide.bytesRead - 'LOGIN hoarder\n'.length;
  t.log(`server read ${readByServer} of ${sent.length} bytes; most held for writing: ${maxHeld} bytes`);
  t.true(readByServer < sent.length / 2, `the server stopped reading (read ${readByServer} of ${sent.length} bytes)`);
  t.true(maxHeld < HELD_LIMIT_BYTES, `the server held ${maxHeld} bytes of replies for a client that reads nothing`);

  // Now read: every reply arrives, in order, nothing lost.
  client.resumeReading();
  for (let i = 0; i < MESSAGES; i++) {
    const from = await client.readLine(10_000);
    const message = await client.readLine(10_000);
    if (from.toString('latin1') !== 'filler' || !message.equals(body(i))) {
      t.fail(`reply ${i} is not message #${i}: ${JSON.stringify(from.toString('latin1'))} / ${JSON.stringify(message.subarray(0, 16).toString('latin1'))}`);
      return;
    }
  }
  for (let i = MESSAGES; i < READS; i++) {
    const line = await client.readLine(10_000);
    if (line.toString('latin1') !== 'READ ERROR') {
      t.fail(`reply ${i} is ${JSON.stringify(line.subarray(0, 40).toString('latin1'))}, not READ ERROR`);
      return;
    }
  }
  t.is(serverSide.bytesRead, 'LOGIN hoarder\n'.length + sent.length, 'the server read every command in the end');
  await client.send('EXIT\n');
  t.is((await client.waitClosed()).trailing.length, 0, 'no reply beyond the commands sent');
});
