// Pipelined commands, replies in order across shards, protocol errors mid-pipeline, and
// byte-exact messages however the bytes are cut into TCP writes.
import test from 'ava';
import { compose, type LineClient, readReplies, tick } from '../helpers/line-client.js';
import { forEachShards, SHARD_COUNTS, sharedServers, startServer, nameOnShard, uniqueName } from '../helpers/server.js';

const shared = sharedServers(test);

/** A fresh name that the router of a two-shard server sends to `shard`. */

/** A small deterministic PRNG (mulberry32), so a failing sequence can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

async function countOf(connect: () => Promise<LineClient>, user: string): Promise<string> {
  const client = await connect();
  await client.send(`LOGIN ${user}\nEXIT\n`);
  const [count] = await client.lines(1);
  return count as string;
}

forEachShards(test, 'hundreds of commands in one write are answered in order across shards', async (t, shards) => {
  const max = 20;
  const { connect } = await startServer(t, { shards, maxMessagesPerUser: max });
  // With two shards: `me` and `other1` live on shard 1, `other0` on shard 0, so the
  // replies of consecutive commands come from different threads.
  const me = nameOnShard('me', 1);
  const other0 = nameOnShard('zero', 0);
  const other1 = nameOnShard('one', 1);
  const targets = [me, other0, other1];

  const boxes = new Map<string, string[]>(targets.map((name) => [name, []]));
  const wire: Buffer[] = [Buffer.from(`LOGIN ${me}\n`)];
  const expected: string[] = ['0'];
  const next = random(0x5eed);
  for (let i = 0; i < 600; i++) {
    if (next() < 0.35) {
      wire.push(Buffer.from('READ\n'));
      const body = (boxes.get(me) as string[]).shift();
      expected.push(...(body === undefined ? ['READ ERROR'] : [me, body]));
    } else {
      const to = targets[Math.floor(next() * targets.length)] as string;
      const body = `op ${i} to ${to}`;
      wire.push(compose(to, body));
      const box = boxes.get(to) as string[];
      // Mailboxes other than mine fill up part-way, so MESSAGE FAILED shows up too.
      if (box.length >= max) {
        expected.push('MESSAGE FAILED');
      } else {
        box.push(body);
        expected.push('MESSAGE SENT');
      }
    }
  }
  t.true(expected.includes('MESSAGE FAILED') && expected.includes('READ ERROR'), 'the sequence exercises every reply');

  const client = await connect();
  await client.send(Buffer.concat(wire)); // one write
  const got = await client.lines(expected.length);
  t.deepEqual(got, expected);
  t.is(client.buffered.length, 0, 'no reply beyond the commands sent');
  t.is(await countOf(connect, other0), String((boxes.get(other0) as string[]).length));
  t.is(await countOf(connect, other1), String((boxes.get(other1) as string[]).length));
});

const BAD_LINES: readonly (readonly [string, string])[] = [
  ['read', 'read\n'],
  ['a second LOGIN', 'LOGIN again\n'],
  ['a COMPOSE with a bad name', 'COMPOSE two words\n'],
  ['an empty line', '\n'],
  ['a line over maxLineBytes', `${'x'.repeat(70_000)}\n`],
];

for (const shards of SHARD_COUNTS) {
  for (const [title, bad] of BAD_LINES) {
    test(`a protocol error mid-pipeline: ${title}: earlier replies in order, then the close, and nothing from the bad line on runs (shards=${shards})`, async (t) => {
      const { connect } = await shared(shards);
      const me = nameOnShard('me', 1);
      const to0 = nameOnShard('to0', 0);
      const to1 = nameOnShard('to1', 1);
      const client = await connect();
      await client.send(
        Buffer.concat([
          Buffer.from(`LOGIN ${me}\n`),
          compose(to0, 'before 0'),
          compose(to1, 'before 1'),
          Buffer.from('READ\n'),
          compose(me, 'to me'),
          Buffer.from('READ\n'),
          Buffer.from(bad),
          compose(to0, 'after 0'),
          compose(to1, 'after 1'),
          compose(me, 'after me'),
          Buffer.from('READ\n'),
        ]),
      );
      t.deepEqual(await client.lines(7), ['0', 'MESSAGE SENT', 'MESSAGE SENT', 'READ ERROR', 'MESSAGE SENT', me, 'to me']);
      const closed = await client.waitClosed();
      t.is(closed.trailing.length, 0, 'no reply for anything from the bad line on, and no error text');

      // Checked from other connections: only what came before the bad line was stored.
      for (const [user, body] of [[to0, 'before 0'], [to1, 'before 1']] as const) {
        const reader = await connect();
        await reader.send(`LOGIN ${user}\nREAD\nREAD\n`);
        t.deepEqual(await reader.lines(1), ['1']);
        t.deepEqual(await readReplies(reader, 2), [{ from: me, body }, null]);
      }
      t.is(await countOf(connect, me), '0');
    });
  }
}

// More commands than the server lets wait at once (maxInFlight, and fewer READs still),
// so it must stop and resume mid-pipeline before it meets the end.
const LONG_PIPELINE = 3000;

for (const shards of SHARD_COUNTS) {
  for (const [ending, tail] of [
    ['EXIT', 'EXIT\n'],
    ['a protocol error', 'read\n'],
    ['the client half-closing', ''],
  ] as const) {
    test(`a long pipeline ended by ${ending}: every command before the end is answered, then the close (shards=${shards})`, async (t) => {
      const { connect } = await shared(shards);
      const me = uniqueName('long');
      const client = await connect();
      await client.send(`LOGIN ${me}\n${'READ\n'.repeat(LONG_PIPELINE)}${tail}`);
      if (tail === '') client.end();
      const replies = await client.lines(1 + LONG_PIPELINE, 30_000);
      t.is(replies[0], '0');
      t.is(replies.filter((reply) => reply === 'READ ERROR').length, LONG_PIPELINE);
      t.is((await client.waitClosed()).trailing.length, 0);
    });
  }
}

/** COMPOSEs `body` to `me` (the logged-in user) and READs it back: the raw READ reply bytes. */
async function roundTrip(client: LineClient, me: string, body: Uint8Array): Promise<Buffer> {
  await client.send(Buffer.concat([compose(me, body), Buffer.from('READ\n')]));
  const sent = (await client.readLine()).toString('latin1');
  if (sent !== 'MESSAGE SENT') throw new Error(`COMPOSE answered ${JSON.stringify(sent)}`);
  return client.readBytes(me.length + 1 + body.length + 1);
}

function readReplyBytes(me: string, body: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(`${me}\n`), body, Buffer.from('\n')]);
}

forEachShards(test, 'messages round-trip byte for byte: every byte but LF, UTF-8, NUL', async (t, shards) => {
  const { connect } = await shared(shards);
  const me = uniqueName('bytes');
  const client = await connect();
  await client.send(`LOGIN ${me}\n`);
  t.deepEqual(await client.lines(1), ['0']);

  const everyByte = Buffer.from(Array.from({ length: 256 }, (_, b) => b).filter((b) => b !== 0x0a));
  t.is(everyByte.length, 255);
  t.true(everyByte.includes(0x0d), 'a CR in the middle of a message is kept');
  const descending = Buffer.from(everyByte).reverse().subarray(0, 250); // ends well away from CR
  const utf8 = Buffer.from('héllo wörld — ✉️ 日本語 🐦 ∑', 'utf8');
  const latin1 = Buffer.from('café naïve ÿ', 'latin1');
  for (const body of [everyByte, descending, utf8, latin1, Buffer.from([0]), Buffer.from([0, 0, 0x0d, 0])]) {
    t.deepEqual(await roundTrip(client, me, body), readReplyBytes(me, body));
  }
  await client.send('READ\n');
  t.deepEqual(await client.lines(1), ['READ ERROR']);
});

forEachShards(test, 'one CR right before the LF is dropped; a CR elsewhere is kept', async (t, shards) => {
  const { connect } = await shared(shards);
  const me = uniqueName('cr');
  const client = await connect();
  const sent = ['abc\r', 'a\rb', '\rstart', '\r', 'two\r\r', 'mid\r\rdle'];
  const stored = ['abc', 'a\rb', '\rstart', '', 'two\r', 'mid\r\rdle'];
  await client.send(Buffer.concat([Buffer.from(`LOGIN ${me}\n`), ...sent.map((body) => compose(me, body)), Buffer.from('READ\n'.repeat(sent.length))]));
  t.deepEqual(await client.lines(1 + sent.length), ['0', ...sent.map(() => 'MESSAGE SENT')]);
  const expected = Buffer.concat(stored.map((body) => readReplyBytes(me, Buffer.from(body, 'latin1'))));
  t.deepEqual(await client.readBytes(expected.length), expected);
});

forEachShards(test, 'a 64 KiB message at the default line limit round-trips; one byte more drops', async (t, shards) => {
  const { server, connect } = await shared(shards);
  const limit = server.options.maxLineBytes;
  t.is(limit, 65_536);
  const next = random(42);
  const body = Buffer.alloc(limit);
  for (let i = 0; i < limit; i++) {
    const b = Math.floor(next() * 256);
    body[i] = b === 0x0a ? 0x0b : b;
  }
  body[limit - 1] = 0x5a; // not a CR, which would be dropped
  const me = uniqueName('big');
  const client = await connect();
  await client.send(`LOGIN ${me}\n`);
  t.deepEqual(await client.lines(1), ['0']);
  t.deepEqual(await roundTrip(client, me, body), readReplyBytes(me, body));

  await client.send(compose(me, Buffer.concat([body, Buffer.from('!')])));
  t.is((await client.waitClosed()).trailing.length, 0);
  t.is(await countOf(connect, me), '0');
});

// The session below, cut into tiny writes: every line boundary, the CR of a CRLF and the
// bytes of a UTF-8 character end up split across TCP segments.
function tinyWriteSession(me: string, other: string): { wire: Buffer; expected: Buffer } {
  const body = Buffer.concat([Buffer.from('split ✉️ message with a NUL '), Buffer.from([0, 0x0d, 0xff]), Buffer.from(' and a long tail '.repeat(8))]);
  const wire = Buffer.concat([
    Buffer.from(`LOGIN ${me}\r\n`),
    Buffer.from(`COMPOSE ${me}\r\n`),
    body,
    Buffer.from('\r\n'),
    compose(other, ''),
    Buffer.from('READ\r\nREAD\n'),
  ]);
  const expected = Buffer.concat([Buffer.from('0\nMESSAGE SENT\nMESSAGE SENT\n'), readReplyBytes(me, body), Buffer.from('READ ERROR\n')]);
  return { wire, expected };
}

for (const shards of SHARD_COUNTS) {
  for (const [label, sizes] of [
    ['1 byte', (): number => 1],
    ['1-3 bytes', ((next) => (): number => 1 + Math.floor(next() * 3))(random(7))],
  ] as const) {
    test(`commands and messages written ${label} at a time still parse (shards=${shards})`, async (t) => {
      const { connect } = await shared(shards);
      const me = uniqueName('tiny');
      const { wire, expected } = tinyWriteSession(me, uniqueName('other'));
      const client = await connect();
      let writes = 0;
      for (let at = 0; at < wire.length; writes++) {
        const size = sizes();
        await client.send(wire.subarray(at, at + size));
        at += size;
        await tick(); // let each write leave as its own segment
      }
      t.true(writes > wire.length / 3);
      t.deepEqual(await client.readBytes(expected.length), expected);
    });
  }
}
