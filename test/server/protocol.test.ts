// The protocol as docs/protocol.md states it, over real TCP on 127.0.0.1, for inline shards
// and for two worker-thread shards.
import type { ExecutionContext } from 'ava';
import { compose, type LineClient, readReplies } from '../helpers/line-client.js';
import { forEachShards, SHARD_COUNTS, sharedServers, startServer, uniqueName } from '../helpers/server.js';
// Declared through suiteTest: protocol-redis.test.ts runs these tests again over Redis.
import { suiteTest as test } from '../helpers/suite.js';

const shared = sharedServers(test);

/** PROTOCOL: on a protocol error the server closes the connection and sends no error text. */
async function assertDropped(t: ExecutionContext, client: LineClient, what: string): Promise<void> {
  const closed = await client.waitClosed();
  t.is(closed.trailing.length, 0, `${what}: sent ${JSON.stringify(closed.trailing.toString('latin1'))} before closing`);
}

/** How many messages wait for `user`, asked on a connection of its own. */
async function countOf(connect: () => Promise<LineClient>, user: string): Promise<string> {
  const client = await connect();
  await client.send(`LOGIN ${user}\n`);
  const [count] = await client.lines(1);
  await client.send('EXIT\n');
  return count as string;
}

// ---------------------------------------------------------------------------------------
// The seed's examples, word for word. Each gets a server of its own: the names are fixed.

forEachShards(test, 'seed example 1: a username with spaces drops the connection', async (t, shards) => {
  const { connect } = await startServer(t, { shards });
  const client = await connect();
  await client.send('LOGIN my username contains the space character\n');
  await assertDropped(t, client, 'example 1');
});

forEachShards(test, 'seed example 2: bob logs in and messages alice', async (t, shards) => {
  const { connect } = await startServer(t, { shards });
  const bob = await connect();
  await bob.send('LOGIN bob\n');
  t.deepEqual(await bob.lines(1), ['0']);
  await bob.send('COMPOSE alice\n');
  await bob.send('Hi Alice!\n');
  t.deepEqual(await bob.lines(1), ['MESSAGE SENT']);

  const alice = await connect();
  await alice.send('LOGIN alice\nREAD\n');
  t.deepEqual(await alice.lines(3), ['1', 'bob', 'Hi Alice!']);
});

forEachShards(test, 'seed example 3: alice with 1024 stored messages gets MESSAGE FAILED', async (t, shards) => {
  const { connect } = await startServer(t, { shards });
  const filler = await connect();
  const batch: Buffer[] = [Buffer.from('LOGIN bob\n')];
  for (let i = 0; i < 1024; i++) batch.push(compose('alice', `message ${i}`));
  await filler.send(Buffer.concat(batch)); // pipelined in one write
  const replies = await filler.lines(1025);
  t.is(replies[0], '0');
  t.true(replies.slice(1).every((reply) => reply === 'MESSAGE SENT'), 'every one of the 1024 COMPOSEs was stored');

  const alice = await connect();
  await alice.send('LOGIN alice\n');
  t.deepEqual(await alice.lines(1), ['1024']);
  await alice.send('COMPOSE alice\n');
  await alice.send('one too many\n');
  t.deepEqual(await alice.lines(1), ['MESSAGE FAILED']);
});

forEachShards(test, 'seed example 4: a lower-case read drops carol', async (t, shards) => {
  const { connect } = await startServer(t, { shards });
  const sender = await connect();
  await sender.send(Buffer.concat([Buffer.from('LOGIN dave\n'), compose('carol', 'for carol')]));
  t.deepEqual(await sender.lines(2), ['0', 'MESSAGE SENT']);

  const carol = await connect();
  await carol.send('LOGIN carol\n');
  t.deepEqual(await carol.lines(1), ['1']);
  await carol.send('read\n');
  await assertDropped(t, carol, 'example 4');

  // The dropped line did nothing: carol's message is still there.
  const again = await connect();
  await again.send('LOGIN carol\nREAD\n');
  t.deepEqual(await again.lines(3), ['1', 'dave', 'for carol']);
});

// ---------------------------------------------------------------------------------------
// The command table.

forEachShards(test, 'LOGIN replies the number of stored messages in decimal', async (t, shards) => {
  const { connect } = await shared(shards);
  const user = uniqueName('count');
  const first = await connect();
  await first.send(`LOGIN ${user}\n`);
  t.deepEqual(await first.lines(1), ['0']);

  const sender = await connect();
  const batch: Buffer[] = [Buffer.from(`LOGIN ${uniqueName('sender')}\n`)];
  for (let i = 0; i < 12; i++) batch.push(compose(user, `m${i}`));
  await sender.send(Buffer.concat(batch));
  t.is((await sender.lines(13)).filter((line) => line === 'MESSAGE SENT').length, 12);

  const second = await connect();
  await second.send(`LOGIN ${user}\n`);
  t.deepEqual(await second.lines(1), ['12']);
});

forEachShards(test, 'COMPOSE stores the message and READ hands it out once, then READ ERROR', async (t, shards) => {
  const { connect } = await shared(shards);
  const alice = uniqueName('alice');
  const bob = uniqueName('bob');
  const sender = await connect();
  await sender.send(`LOGIN ${alice}\n`);
  await sender.send(compose(bob, 'hello bob'));
  t.deepEqual(await sender.lines(2), ['0', 'MESSAGE SENT']);

  const reader = await connect();
  await reader.send(`LOGIN ${bob}\nREAD\nREAD\n`);
  t.deepEqual(await reader.lines(4), ['1', alice, 'hello bob', 'READ ERROR']);

  // READ removed it: a new session sees an empty mailbox.
  const later = await connect();
  await later.send(`LOGIN ${bob}\nREAD\n`);
  t.deepEqual(await later.lines(2), ['0', 'READ ERROR']);
});

forEachShards(test, 'READ on a mailbox that never held anything is READ ERROR', async (t, shards) => {
  const { connect } = await shared(shards);
  const client = await connect();
  await client.send(`LOGIN ${uniqueName('empty')}\nREAD\nREAD\n`);
  t.deepEqual(await client.lines(3), ['0', 'READ ERROR', 'READ ERROR']);
});

forEachShards(test, 'EXIT as the first command closes the connection and sends nothing', async (t, shards) => {
  const { connect } = await shared(shards);
  const client = await connect();
  await client.send('EXIT\n');
  const closed = await client.waitClosed();
  t.is(closed.how, 'end');
  t.is(closed.trailing.length, 0);
});

forEachShards(test, 'EXIT after commands: their replies, then the close, and nothing after EXIT runs', async (t, shards) => {
  const { connect } = await shared(shards);
  const user = uniqueName('exit');
  const client = await connect();
  await client.send(Buffer.concat([Buffer.from(`LOGIN ${user}\n`), compose(user, 'kept'), Buffer.from('READ\nEXIT\n'), compose(user, 'after exit')]));
  t.deepEqual(await client.lines(4), ['0', 'MESSAGE SENT', user, 'kept']);
  const closed = await client.waitClosed();
  t.is(closed.trailing.length, 0, 'EXIT itself sends nothing');
  t.is(await countOf(connect, user), '0', 'the COMPOSE after EXIT was not executed');
});

forEachShards(test, 'EXIT ended by CRLF closes the connection', async (t, shards) => {
  const { connect } = await shared(shards);
  const client = await connect();
  await client.send(`LOGIN ${uniqueName('crlf-exit')}\r\nEXIT\r\n`);
  t.deepEqual(await client.lines(1), ['0']);
  t.is((await client.waitClosed()).trailing.length, 0);
});

// ---------------------------------------------------------------------------------------
// Protocol errors: each one drops the connection with no text, and nothing after it runs.

type Case = readonly [title: string, line: string | Buffer];

const BEFORE_LOGIN: readonly Case[] = [
  ['read in lower case', 'read\n'],
  ['READ before LOGIN', 'READ\n'],
  ['COMPOSE before LOGIN', 'COMPOSE bob\nhi\n'],
  ['LOGIN with no name', 'LOGIN\n'],
  ['LOGIN with an empty name', 'LOGIN \n'],
  ['LOGIN a b', 'LOGIN a b\n'],
  ['LOGIN  bob (two spaces)', 'LOGIN  bob\n'],
  ['LOGIN bob with a trailing space', 'LOGIN bob \n'],
  ['login in lower case', 'login bob\n'],
  ['Login in mixed case', 'Login bob\n'],
  ['a space before LOGIN', ' LOGIN bob\n'],
  ['a tab instead of the space', 'LOGIN\tbob\n'],
  ['a tab in the name', 'LOGIN bo\tb\n'],
  ['a NUL in the name', Buffer.from('LOGIN bo\x00b\n', 'latin1')],
  ['DEL (0x7F) in the name', Buffer.from('LOGIN bo\x7fb\n', 'latin1')],
  ['a control byte (0x01) in the name', Buffer.from('LOGIN \x01bob\n', 'latin1')],
  ['UTF-8 in the name', Buffer.from('LOGIN bé\n', 'utf8')],
  ['a Latin-1 byte (0xFF) in the name', Buffer.from('LOGIN bob\xff\n', 'latin1')],
  ['a 257-byte name', `LOGIN ${'x'.repeat(257)}\n`],
  ['a CR inside the name', 'LOGIN b\rob\n'],
  ['two CRs before the LF (only one is dropped)', 'LOGIN bob\r\r\n'],
  ['an empty line', '\n'],
  ['an empty line ended by CRLF', '\r\n'],
  ['an unknown command', 'HELLO\n'],
  ['EXIT with a trailing space', 'EXIT \n'],
  ['exit in lower case', 'exit\n'],
];

const AFTER_LOGIN: readonly Case[] = [
  ['a second LOGIN with the same name', 'LOGIN SELF\n'],
  ['a second LOGIN with another name', 'LOGIN someone-else\n'],
  ['read in lower case', 'read\n'],
  ['Read in mixed case', 'Read\n'],
  ['READ with a trailing space', 'READ \n'],
  ['READ with a leading space', ' READ\n'],
  ['READ with an argument', 'READ x\n'],
  ['READ ended by CR CR LF', 'READ\r\r\n'],
  ['COMPOSE with no name', 'COMPOSE\nTARGET\n'],
  ['COMPOSE with an empty name', 'COMPOSE \nhi\n'],
  ['COMPOSE  name (two spaces)', 'COMPOSE  TARGET\nhi\n'],
  ['COMPOSE name with a trailing space', 'COMPOSE TARGET \nhi\n'],
  ['COMPOSE a b', 'COMPOSE TARGET b\nhi\n'],
  ['compose in lower case', 'compose TARGET\nhi\n'],
  ['COMPOSE to a name with UTF-8', Buffer.from('COMPOSE bé\nhi\n', 'utf8')],
  ['COMPOSE to a 257-byte name', `COMPOSE ${'y'.repeat(257)}\nhi\n`],
  ['an empty line', '\n'],
  ['EXIT with a trailing space', 'EXIT \n'],
  ['exit in lower case', 'exit\n'],
];

for (const shards of SHARD_COUNTS) {
  for (const [title, line] of BEFORE_LOGIN) {
    test(`protocol error before LOGIN: ${title} (shards=${shards})`, async (t) => {
      const { connect } = await shared(shards);
      const client = await connect();
      // A valid LOGIN after the bad line would be answered if anything after it ran.
      await client.send(Buffer.concat([Buffer.from(line), Buffer.from(`LOGIN ${uniqueName('never')}\n`)]));
      await assertDropped(t, client, title);
    });
  }
  for (const [title, template] of AFTER_LOGIN) {
    test(`protocol error after LOGIN: ${title} (shards=${shards})`, async (t) => {
      const { connect } = await shared(shards);
      const self = uniqueName('self');
      const target = uniqueName('target');
      const line = typeof template === 'string' ? template.replaceAll('SELF', self).replaceAll('TARGET', target) : template;
      const client = await connect();
      await client.send(Buffer.concat([Buffer.from(`LOGIN ${self}\n`), Buffer.from(line), compose(target, 'after the bad line'), Buffer.from('READ\n')]));
      t.deepEqual(await client.lines(1), ['0']);
      await assertDropped(t, client, title);
      // Neither the bad line (read leniently) nor the COMPOSE after it stored anything.
      t.is(await countOf(connect, target), '0');
    });
  }
}

test('a username of exactly 256 bytes using every visible ASCII byte is accepted', async (t) => {
  const { connect } = await shared(0);
  let visible = '';
  for (let b = 0x21; b <= 0x7e; b++) visible += String.fromCharCode(b);
  const name = (visible + visible + visible).slice(0, 256 - 12) + uniqueName('z').slice(0, 12).padEnd(12, 'z');
  t.is(name.length, 256);
  const client = await connect();
  await client.send(Buffer.concat([Buffer.from(`LOGIN ${name}\n`), compose(name, 'to myself'), Buffer.from('READ\n')]));
  t.deepEqual(await client.lines(4), ['0', 'MESSAGE SENT', name, 'to myself']);
});

// ---------------------------------------------------------------------------------------
// Framing.

forEachShards(test, 'replies end with a bare LF, never CRLF', async (t, shards) => {
  const { connect } = await shared(shards);
  const user = uniqueName('lf');
  const client = await connect();
  await client.send(Buffer.concat([Buffer.from(`LOGIN ${user}\n`), compose(user, 'body'), Buffer.from('READ\nREAD\n'), compose(user, 'x'), Buffer.from('EXIT\n')]));
  const expected = Buffer.from(`0\nMESSAGE SENT\n${user}\nbody\nREAD ERROR\nMESSAGE SENT\n`);
  const bytes = await client.readBytes(expected.length);
  t.deepEqual(bytes, expected);
  t.false(bytes.includes(0x0d));
  t.is((await client.waitClosed()).trailing.length, 0);
});

forEachShards(test, 'CRLF input is accepted and the CR is not part of the line', async (t, shards) => {
  const { connect } = await shared(shards);
  const user = uniqueName('crlf');
  const client = await connect();
  await client.send(`LOGIN ${user}\r\nCOMPOSE ${user}\r\nhello there\r\nREAD\r\nREAD\r\n`);
  const expected = Buffer.from(`0\nMESSAGE SENT\n${user}\nhello there\nREAD ERROR\n`);
  t.deepEqual(await client.readBytes(expected.length), expected);
});

forEachShards(test, 'a line of exactly maxLineBytes works as a message; one byte more drops the connection', async (t, shards) => {
  const { connect } = await startServer(t, { shards, maxLineBytes: 300 });
  const user = uniqueName('limit');
  const exact = 'x'.repeat(299) + 'e';
  const client = await connect();
  // The CR of a CRLF is not counted against the limit either.
  await client.send(Buffer.concat([Buffer.from(`LOGIN ${user}\n`), compose(user, exact), Buffer.from(`COMPOSE ${user}\n${exact}\r\n`), Buffer.from('READ\nREAD\n')]));
  t.deepEqual(await client.lines(7), ['0', 'MESSAGE SENT', 'MESSAGE SENT', user, exact, user, exact]);

  await client.send(compose(user, `${exact}!`));
  await assertDropped(t, client, 'a 301-byte line');
  t.is(await countOf(connect, user), '0', 'the over-long message was not stored');
});

forEachShards(test, 'an over-long line is dropped as soon as the limit is passed, without waiting for its LF', async (t, shards) => {
  const { connect } = await startServer(t, { shards, maxLineBytes: 300 });
  const before = await connect();
  await before.send('A'.repeat(1000)); // no LF, before LOGIN
  await assertDropped(t, before, 'an unterminated 1000-byte command line');

  const user = uniqueName('long');
  const after = await connect();
  await after.send(`LOGIN ${user}\nCOMPOSE ${user}\n${'m'.repeat(1000)}`); // a message with no LF yet
  t.deepEqual(await after.lines(1), ['0']);
  await assertDropped(t, after, 'an unterminated 1000-byte message');
});

forEachShards(test, 'a connection that closes mid-line never executes that line', async (t, shards) => {
  const { connect } = await shared(shards);
  const sender = uniqueName('half-sender');
  const bob = uniqueName('bob');
  const client = await connect();
  await client.send(`LOGIN ${sender}\nCOMPOSE ${bob}\nhalf`);
  client.end();
  t.deepEqual(await client.lines(1), ['0']);
  t.is((await client.waitClosed()).trailing.length, 0);

  const reader = await connect();
  await reader.send(`LOGIN ${bob}\nREAD\n`);
  t.deepEqual(await reader.lines(2), ['0', 'READ ERROR']);
});

// ---------------------------------------------------------------------------------------
// Names, mailboxes and messages.

forEachShards(test, 'usernames are case sensitive: bob and Bob are two users', async (t, shards) => {
  const { connect } = await shared(shards);
  const id = uniqueName('');
  const lower = `bob${id}`;
  const upper = `Bob${id}`;
  const from = uniqueName('s');
  const sender = await connect();
  await sender.send(Buffer.concat([Buffer.from(`LOGIN ${from}\n`), compose(lower, 'to lower'), compose(upper, 'to upper 1'), compose(upper, 'to upper 2')]));
  t.deepEqual(await sender.lines(4), ['0', 'MESSAGE SENT', 'MESSAGE SENT', 'MESSAGE SENT']);

  const bob = await connect();
  await bob.send(`LOGIN ${lower}\nREAD\nREAD\n`);
  t.deepEqual(await bob.lines(4), ['1', from, 'to lower', 'READ ERROR']);
  const Bob = await connect();
  await Bob.send(`LOGIN ${upper}\nREAD\nREAD\nREAD\n`);
  t.deepEqual(await Bob.lines(6), ['2', from, 'to upper 1', from, 'to upper 2', 'READ ERROR']);
});

forEachShards(test, 'a user may compose to themselves', async (t, shards) => {
  const { connect } = await shared(shards);
  const me = uniqueName('me');
  const client = await connect();
  await client.send(Buffer.concat([Buffer.from(`LOGIN ${me}\n`), compose(me, 'note to self'), Buffer.from('READ\n')]));
  t.deepEqual(await client.lines(4), ['0', 'MESSAGE SENT', me, 'note to self']);
});

forEachShards(test, 'a message to a user who never logged in waits for them', async (t, shards) => {
  const { connect } = await shared(shards);
  const sender = uniqueName('early');
  const newcomer = uniqueName('newcomer');
  const client = await connect();
  await client.send(Buffer.concat([Buffer.from(`LOGIN ${sender}\n`), compose(newcomer, 'welcome')]));
  t.deepEqual(await client.lines(2), ['0', 'MESSAGE SENT']);
  await client.send('EXIT\n');
  await client.waitClosed();

  const reader = await connect();
  await reader.send(`LOGIN ${newcomer}\nREAD\n`);
  t.deepEqual(await reader.lines(3), ['1', sender, 'welcome']);
});

forEachShards(test, 'the sender shown by READ is the login name of the composing connection', async (t, shards) => {
  const { connect } = await shared(shards);
  const ann = uniqueName('ann');
  const ben = uniqueName('ben');
  const to = uniqueName('to');
  const a = await connect();
  await a.send(Buffer.concat([Buffer.from(`LOGIN ${ann}\n`), compose(to, `I am ${ben}`)]));
  t.deepEqual(await a.lines(2), ['0', 'MESSAGE SENT']);
  const b = await connect();
  await b.send(Buffer.concat([Buffer.from(`LOGIN ${ben}\n`), compose(to, `I am ${ann}`)]));
  t.deepEqual(await b.lines(2), ['0', 'MESSAGE SENT']);

  const reader = await connect();
  await reader.send(`LOGIN ${to}\nREAD\nREAD\n`);
  t.deepEqual(await reader.lines(5), ['2', ann, `I am ${ben}`, ben, `I am ${ann}`]);
});

forEachShards(test, 'an empty message is allowed, and READ, EXIT or LOGIN as a message are just text', async (t, shards) => {
  const { connect } = await shared(shards);
  const user = uniqueName('text');
  const bodies = ['', 'READ', 'EXIT', `LOGIN ${user}`, `COMPOSE ${user}`, 'read', ' ', '\r'];
  const client = await connect();
  await client.send(Buffer.concat([Buffer.from(`LOGIN ${user}\n`), ...bodies.map((body) => compose(user, body))]));
  t.deepEqual(await client.lines(1 + bodies.length), ['0', ...bodies.map(() => 'MESSAGE SENT')]);
  await client.send('READ\n'.repeat(bodies.length + 1));
  const replies = await readReplies(client, bodies.length + 1);
  // PROTOCOL: one CR right before the LF is dropped, so the message `\r` arrives empty.
  const expected = bodies.map((body) => ({ from: user, body: body === '\r' ? '' : body }));
  t.deepEqual(replies, [...expected, null]);
  t.false(client.closed, 'EXIT as message text did not end the session');
});

forEachShards(test, 'mailboxes are FIFO per recipient, in the order COMPOSEs were accepted', async (t, shards) => {
  const { connect } = await shared(shards);
  const to = uniqueName('fifo');
  const ann = uniqueName('ann');
  const ben = uniqueName('ben');
  const a = await connect();
  const b = await connect();
  await a.send(`LOGIN ${ann}\n`);
  await b.send(`LOGIN ${ben}\n`);
  await a.lines(1);
  await b.lines(1);
  // Alternate senders, each COMPOSE accepted before the next is sent.
  const expected: { from: string; body: string }[] = [];
  for (let i = 0; i < 10; i++) {
    for (const [client, from] of [[a, ann], [b, ben]] as const) {
      const body = `${from} #${i}`;
      await client.send(compose(to, body));
      t.deepEqual(await client.lines(1), ['MESSAGE SENT']);
      expected.push({ from, body });
    }
  }
  // Then a pipelined run from one sender goes in behind them, in order.
  await a.send(Buffer.concat(Array.from({ length: 300 }, (_, i) => compose(to, `burst ${i}`))));
  t.true((await a.lines(300)).every((line) => line === 'MESSAGE SENT'));
  for (let i = 0; i < 300; i++) expected.push({ from: ann, body: `burst ${i}` });

  const reader = await connect();
  await reader.send(`LOGIN ${to}\n${'READ\n'.repeat(expected.length + 1)}`);
  t.deepEqual(await reader.lines(1), [String(expected.length)]);
  t.deepEqual(await readReplies(reader, expected.length + 1), [...expected, null]);
});

forEachShards(test, 'several connections logged in as one user get each message exactly once', async (t, shards) => {
  const { connect } = await shared(shards);
  const user = uniqueName('shared');
  const sender = uniqueName('sender');
  const total = 200;
  const composer = await connect();
  await composer.send(Buffer.concat([Buffer.from(`LOGIN ${sender}\n`), ...Array.from({ length: total }, (_, i) => compose(user, `m${i}`))]));
  t.true((await composer.lines(total + 1)).slice(1).every((line) => line === 'MESSAGE SENT'));

  const readers = [await connect(), await connect(), await connect()];
  await Promise.all(readers.map((reader) => reader.send(`LOGIN ${user}\n`)));
  for (const reader of readers) t.deepEqual(await reader.lines(1), [String(total)]);
  // Together they ask for more than there is, all pipelined at once.
  const perReader = 100;
  await Promise.all(readers.map((reader) => reader.send('READ\n'.repeat(perReader))));
  const results = await Promise.all(readers.map((reader) => readReplies(reader, perReader)));

  const seen: number[] = [];
  for (const replies of results) {
    const mine = replies.filter((reply) => reply !== null).map((reply) => {
      t.is(reply.from, sender);
      return Number(reply.body.slice(1));
    });
    // FIFO: each connection's share comes out oldest first.
    t.deepEqual(mine, [...mine].sort((x, y) => x - y));
    // Once a READ ERROR came, the mailbox was empty: no message after it.
    const firstError = replies.indexOf(null);
    if (firstError !== -1) t.true(replies.slice(firstError).every((reply) => reply === null));
    seen.push(...mine);
  }
  t.deepEqual([...seen].sort((x, y) => x - y), Array.from({ length: total }, (_, i) => i), 'every message exactly once');
});

forEachShards(test, 'MESSAGE FAILED at maxMessagesPerUser, and a READ frees a place', async (t, shards) => {
  const { connect } = await startServer(t, { shards, maxMessagesPerUser: 3 });
  const sender = uniqueName('sender');
  const full = uniqueName('full');
  const other = uniqueName('other');
  const a = await connect();
  await a.send(Buffer.concat([Buffer.from(`LOGIN ${sender}\n`), ...['m1', 'm2', 'm3', 'm4'].map((body) => compose(full, body)), compose(other, 'o1')]));
  t.deepEqual(await a.lines(6), ['0', 'MESSAGE SENT', 'MESSAGE SENT', 'MESSAGE SENT', 'MESSAGE FAILED', 'MESSAGE SENT']);

  const reader = await connect();
  await reader.send(`LOGIN ${full}\nREAD\n`);
  t.deepEqual(await reader.lines(3), ['3', sender, 'm1']);

  await a.send(Buffer.concat([compose(full, 'm5'), compose(full, 'm6')]));
  t.deepEqual(await a.lines(2), ['MESSAGE SENT', 'MESSAGE FAILED']);

  await reader.send('READ\nREAD\nREAD\nREAD\n');
  t.deepEqual(await readReplies(reader, 4), [
    { from: sender, body: 'm2' },
    { from: sender, body: 'm3' },
    { from: sender, body: 'm5' },
    null,
  ]);
});
