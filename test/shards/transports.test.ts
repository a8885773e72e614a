// Both ways batches reach worker shards, end to end over TCP: SharedArrayBuffer rings
// (the default) and the MessagePort, with batches small and too big for a ring.
import test from 'ava';
import type { ShardTransport } from '../../lib/options.js';
import { compose, readReplies } from '../helpers/line-client.js';
import { nameOnShard, startServer } from '../helpers/server.js';

const TRANSPORTS: ShardTransport[] = ['ring', 'port'];

for (const shardTransport of TRANSPORTS) {
  test(`${shardTransport}: pipelined commands to both shards come back in order, byte for byte`, async (t) => {
    const { connect } = await startServer(t, { shards: 2, shardTransport });
    const me = nameOnShard('me', 0);
    const other = nameOnShard('other', 1);
    const client = await connect();
    const wire: Buffer[] = [Buffer.from(`LOGIN ${me}\n`)];
    for (let i = 0; i < 200; i++) wire.push(compose(i % 2 === 0 ? me : other, `m${i}`));
    wire.push(Buffer.from('READ\n'.repeat(101)));
    await client.send(Buffer.concat(wire));
    const lines = await client.lines(201);
    t.deepEqual(lines, ['0', ...Array.from({ length: 200 }, () => 'MESSAGE SENT')]);
    const reads = await readReplies(client, 101);
    t.deepEqual(
      reads,
      [...Array.from({ length: 100 }, (_, k) => ({ from: me, body: `m${2 * k}` })), null],
    );
  });

  test(`${shardTransport}: batches bigger than a ring (about 3 MB of messages) arrive whole and in order`, async (t) => {
    const { connect } = await startServer(t, { shards: 2, shardTransport, maxLineBytes: 70_000 });
    const me = nameOnShard('big', 1);
    const client = await connect();
    const bodies = Array.from({ length: 50 }, (_, i) => String.fromCharCode(0x41 + (i % 26)).repeat(60_000 + i));
    await client.send(Buffer.concat([Buffer.from(`LOGIN ${me}\n`), ...bodies.map((body) => compose(me, body))]));
    t.deepEqual(await client.lines(51), ['0', ...bodies.map(() => 'MESSAGE SENT')]);
    await client.send('READ\n'.repeat(50));
    const reads = await readReplies(client, 50);
    t.true(
      reads.every((reply, i) => reply?.from === me && reply.body === bodies[i]),
      'every message back, in order',
    );
  });
}
