import { once } from 'node:events';
import { type AddressInfo, type Server as NetServer, type Socket, createServer as createNetServer } from 'node:net';
import test, { type ExecutionContext } from 'ava';
import { type Client, connect } from '../../lib/client/index.js';
import { ClientClosedError, ClientError, InvalidOptionError } from '../../lib/errors.js';
import { silentLogger } from '../../lib/logger.js';
import type { ServerOptions } from '../../lib/options.js';
import { createServer } from '../../lib/server.js';
import { until } from '../helpers/line-client.js';
import { HOST, startServer } from '../helpers/server.js';

// Every wait in this file is bounded by this, well under ava's own timeout.
const WAIT_MS = 5_000;

function within<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

/** Connects, and makes sure the client is closed when the test ends. */
async function open(t: ExecutionContext, port: number, options: { timeoutMs?: number; maxLineBytes?: number } = {}): Promise<Client> {
  const client = await within(connect({ host: HOST, port, ...options }), 'connect');
  t.teardown(() => client.close());
  return client;
}

async function listenNet(t: ExecutionContext, onSocket: (socket: Socket) => void): Promise<number> {
  const net: NetServer = createNetServer({ allowHalfOpen: true }, onSocket);
  const sockets = new Set<Socket>();
  net.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        net.close(() => resolve());
      }),
  );
  net.listen(0, HOST);
  await once(net, 'listening');
  return (net.address() as AddressInfo).port;
}

/**
 * A real pigeonhole server behind our own listener, which also records every byte the
 * client sent: proof of what reached the wire.
 */
async function recordingServer(t: ExecutionContext, options: ServerOptions = {}): Promise<{ port: number; received: () => Buffer; closed: Promise<void> }> {
  const server = createServer({ shards: 0, logger: silentLogger, ...options });
  t.teardown(() => server.close());
  const chunks: Buffer[] = [];
  let socketClosed!: () => void;
  const closed = new Promise<void>((resolve) => (socketClosed = resolve));
  const port = await listenNet(t, (socket) => {
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('close', () => socketClosed());
    server.handle(socket);
  });
  return { port, received: () => Buffer.concat(chunks), closed };
}

/** A server that accepts, records and never answers. */
async function silentServer(t: ExecutionContext): Promise<{ port: number; received: () => Buffer }> {
  const chunks: Buffer[] = [];
  const port = await listenNet(t, (socket) => socket.on('data', (chunk: Buffer) => chunks.push(chunk)));
  return { port, received: () => Buffer.concat(chunks) };
}

function expectCode(code: string) {
  return { instanceOf: ClientError, code };
}

for (const shards of [0, 2]) {
  test(`shards ${shards}: login answers the number of stored messages`, async (t) => {
    const { port } = await startServer(t, { shards });
    const bob = await open(t, port);
    t.is(await bob.login('bob'), 0);
    t.deepEqual(await Promise.all([bob.compose('alice', 'one'), bob.compose('alice', 'two'), bob.compose('alice', 'three')]), [true, true, true]);
    await bob.exit();
    const alice = await open(t, port);
    t.is(await alice.login('alice'), 3);
    await alice.exit();
  });

  test(`shards ${shards}: compose and read round-trip strings, UTF-8 and raw bytes`, async (t) => {
    const { port } = await startServer(t, { shards });
    const bob = await open(t, port);
    const bytes = Buffer.from([0x00, 0xff, 0x80, 0x41, 0x0b, 0x7f]);
    await bob.login('bob');
    t.true(await bob.compose('alice', 'Hi Alice!'));
    t.true(await bob.compose('alice', 'héllo ✉ 世界'));
    t.true(await bob.compose('alice', bytes));
    t.true(await bob.compose('alice', new Uint8Array([0x61, 0x62]).subarray(1)));
    t.true(await bob.compose('alice', ''));
    await bob.exit();

    const alice = await open(t, port);
    t.is(await alice.login('alice'), 5);
    t.deepEqual(await alice.read(), { from: 'bob', message: 'Hi Alice!', raw: Buffer.from('Hi Alice!') });
    const utf8 = await alice.read();
    t.is(utf8?.message, 'héllo ✉ 世界');
    t.deepEqual(utf8?.raw, Buffer.from('héllo ✉ 世界', 'utf8'));
    const raw = await alice.read();
    t.deepEqual(raw?.raw, bytes);
    t.is(raw?.from, 'bob');
    t.deepEqual((await alice.read())?.raw, Buffer.from('b'));
    t.deepEqual(await alice.read(), { from: 'bob', message: '', raw: Buffer.alloc(0) });
    t.is(await alice.read(), null);
    await alice.exit();
  });

  test(`shards ${shards}: calls issued without awaiting pipeline and resolve in order`, async (t) => {
    const { port } = await startServer(t, { shards });
    const client = await open(t, port);
    const settled: string[] = [];
    const track = <T>(name: string, promise: Promise<T>): Promise<T> => promise.then((value) => (settled.push(name), value));
    const calls: Promise<unknown>[] = [track('login', client.login('carol'))];
    // Mailboxes on different shards, interleaved with reads of carol's own mailbox.
    for (let i = 0; i < 40; i++) {
      calls.push(track(`compose ${i}`, client.compose(i % 2 === 0 ? 'carol' : `user${i}`, `message ${i}`)));
      calls.push(track(`read ${i}`, client.read()));
    }
    t.true(client.pendingCount > 1, 'commands are in flight together');
    const results = await within(Promise.all(calls), 'the pipelined replies');
    t.deepEqual(settled, ['login', ...Array.from({ length: 40 }, (_, i) => [`compose ${i}`, `read ${i}`]).flat()]);
    t.is(results[0], 0);
    for (let i = 0; i < 40; i++) {
      t.is(results[1 + 2 * i], true);
      const read = results[2 + 2 * i] as { from: string; message: string } | null;
      // Each read comes right after a compose; carol's own messages come back in FIFO order.
      if (i % 2 === 0) t.deepEqual(read && { from: read.from, message: read.message }, { from: 'carol', message: `message ${i}` });
      else t.is(read, null);
    }
    await client.exit();
  });

  test(`shards ${shards}: a full mailbox answers MESSAGE FAILED, which is false`, async (t) => {
    const { port } = await startServer(t, { shards, maxMessagesPerUser: 2 });
    const client = await open(t, port);
    await client.login('bob');
    t.deepEqual(await Promise.all([client.compose('dave', 'a'), client.compose('dave', 'b'), client.compose('dave', 'c')]), [true, true, false]);
    await client.exit();
  });
}

test('refused calls reject with a code and send nothing; the connection survives', async (t) => {
  const { port, received, closed } = await recordingServer(t, { maxLineBytes: 300 });
  const client = await open(t, port, { maxLineBytes: 300 });

  await t.throwsAsync(client.compose('alice', 'hi'), expectCode('PH_ERR_CLIENT_NOT_LOGGED_IN'));
  await t.throwsAsync(client.read(), expectCode('PH_ERR_CLIENT_NOT_LOGGED_IN'));
  await t.throwsAsync(client.login('my name has spaces'), expectCode('PH_ERR_CLIENT_INVALID_USERNAME'));
  await t.throwsAsync(client.login(''), expectCode('PH_ERR_CLIENT_INVALID_USERNAME'));
  await t.throwsAsync(client.login('x'.repeat(257)), expectCode('PH_ERR_CLIENT_INVALID_USERNAME'));
  await t.throwsAsync(client.login('bøb'), expectCode('PH_ERR_CLIENT_INVALID_USERNAME'));
  await t.throwsAsync(client.login('tab\there'), expectCode('PH_ERR_CLIENT_INVALID_USERNAME'));
  const refused = await t.throwsAsync(client.login('a b'), expectCode('PH_ERR_CLIENT_INVALID_USERNAME'));
  t.regex(refused?.message ?? '', /space/, 'the reason is given');

  // Pipelined: login is counted at call time, so the compose behind it is allowed.
  const login = client.login('bob');
  const sent = client.compose('alice', 'y'.repeat(300));
  await t.throwsAsync(client.login('bob'), expectCode('PH_ERR_CLIENT_ALREADY_LOGGED_IN'));
  await t.throwsAsync(client.compose('alice', 'two\nlines'), expectCode('PH_ERR_CLIENT_INVALID_MESSAGE'));
  await t.throwsAsync(client.compose('alice', 'carriage\rreturn'), expectCode('PH_ERR_CLIENT_INVALID_MESSAGE'));
  await t.throwsAsync(client.compose('alice', 'ends with CR\r'), expectCode('PH_ERR_CLIENT_INVALID_MESSAGE'));
  await t.throwsAsync(client.compose('alice', Buffer.from([0x61, 0x0a])), expectCode('PH_ERR_CLIENT_INVALID_MESSAGE'));
  await t.throwsAsync(client.compose('alice', 'z'.repeat(301)), expectCode('PH_ERR_CLIENT_INVALID_MESSAGE'));
  await t.throwsAsync(client.compose('alice', 'é'.repeat(151)), expectCode('PH_ERR_CLIENT_INVALID_MESSAGE'), '302 bytes, 151 characters');
  await t.throwsAsync(client.compose('al ice', 'hi'), expectCode('PH_ERR_CLIENT_INVALID_USERNAME'));
  await t.throwsAsync(client.compose(42 as unknown as string, 'hi'), expectCode('PH_ERR_CLIENT_INVALID_USERNAME'));
  await t.throwsAsync(client.compose('alice', 42 as unknown as string), expectCode('PH_ERR_CLIENT_INVALID_MESSAGE'));

  t.is(await login, 0);
  t.true(await sent, 'a message of exactly maxLineBytes is accepted by the server');
  t.is(await client.read(), null);
  await within(client.exit(), 'exit');
  t.is(await client.closed, null, 'closed by our EXIT, not dropped');
  await within(closed, 'the server side to close');
  t.is(received().toString('latin1'), `LOGIN bob\nCOMPOSE alice\n${'y'.repeat(300)}\nREAD\nEXIT\n`);
});

test('exit resolves when the server has closed, after earlier replies; later calls reject at once', async (t) => {
  const { port } = await startServer(t);
  const client = await open(t, port);
  const login = client.login('bob');
  const compose = client.compose('bob', 'note to self');
  const exit = client.exit();
  t.is(client.status, 'exiting');
  await t.throwsAsync(client.read(), { instanceOf: ClientClosedError, code: 'PH_ERR_CLIENT_CLOSED' });
  t.is(await login, 0);
  t.true(await compose);
  await within(exit, 'exit');
  t.is(client.status, 'closed');
  await t.throwsAsync(client.read(), { instanceOf: ClientClosedError });
  await t.throwsAsync(client.exit(), { instanceOf: ClientClosedError });

  const again = await open(t, port);
  t.is(await again.login('bob'), 1, 'the compose before EXIT was stored');
  again.close();
});

test('a server that drops the connection rejects every pending call with ClientClosedError', async (t) => {
  // Answers nothing and hangs up as soon as the second command arrives.
  const port = await listenNet(t, (socket) => {
    let lines = 0;
    socket.on('data', (chunk: Buffer) => {
      lines += chunk.filter((b) => b === 0x0a).length;
      if (lines >= 2) socket.destroy();
    });
  });
  const client = await open(t, port);
  const calls = [client.login('bob'), client.read(), client.compose('alice', 'hi'), client.read()];
  for (const call of calls) {
    const err = await within(t.throwsAsync(call, { instanceOf: ClientClosedError, code: 'PH_ERR_CLIENT_CLOSED' }), 'the rejection');
    t.regex(err?.message ?? '', /closed|failed/);
  }
  const reason = await within(client.closed, 'closed');
  t.true(reason instanceof ClientClosedError);
  t.is(client.status, 'closed');
  await t.throwsAsync(client.read(), { instanceOf: ClientClosedError });
});

test('a protocol drop by the real server: earlier replies arrive, the rest reject', async (t) => {
  // The server's line limit is smaller than the client believes: the long message is
  // a protocol error to the server, which answers LOGIN and then drops.
  const { port } = await startServer(t, { maxLineBytes: 300 });
  const client = await open(t, port);
  const login = client.login('bob');
  const compose = client.compose('alice', 'x'.repeat(400));
  const read = client.read();
  t.is(await within(login, 'login'), 0);
  await within(t.throwsAsync(compose, { instanceOf: ClientClosedError }), 'compose to reject');
  await within(t.throwsAsync(read, { instanceOf: ClientClosedError }), 'read to reject');
  const reason = await within(client.closed, 'closed');
  t.regex(reason?.message ?? '', /closed the connection/);
});

test('a server that closes an idle connection is noticed through closed', async (t) => {
  const { server, port } = await startServer(t);
  const client = await open(t, port);
  await client.login('bob');
  await server.close();
  const reason = await within(client.closed, 'closed');
  t.true(reason instanceof ClientClosedError);
  await t.throwsAsync(client.read(), { instanceOf: ClientClosedError });
});

test('a server that never answers: the call times out and the connection closes', async (t) => {
  const { port, received } = await silentServer(t);
  const client = await open(t, port, { timeoutMs: 200 });
  const login = client.login('bob');
  const read = client.read();
  await within(t.throwsAsync(login, expectCode('PH_ERR_CLIENT_TIMEOUT')), 'the timeout');
  const behind = await t.throwsAsync(read, { instanceOf: ClientClosedError });
  t.is((behind?.cause as ClientError | undefined)?.code, 'PH_ERR_CLIENT_TIMEOUT', 'the cause says why');
  t.is(client.status, 'closed');
  // What was sent before the timeout reached the server (on a busy machine its 'data'
  // event may come after the client's timer).
  await until(() => received().length >= 15, 'the commands at the server', WAIT_MS);
  t.is(received().toString(), 'LOGIN bob\nREAD\n');
});

test('exit times out too when the server never closes', async (t) => {
  const { port } = await silentServer(t);
  const client = await open(t, port, { timeoutMs: 200 });
  await within(t.throwsAsync(client.exit(), expectCode('PH_ERR_CLIENT_TIMEOUT')), 'the timeout');
  t.is(client.status, 'closed');
});

test('replies split into single bytes are reassembled; a CR inside a message is kept', async (t) => {
  const port = await listenNet(t, (socket) => {
    socket.once('data', () => {
      const reply = Buffer.from('2\nbob\na\rb\nREAD ERROR\nMESSAGE SENT\n');
      let i = 0;
      const drip = (): void => {
        if (socket.destroyed) return;
        if (i < reply.length) {
          socket.write(reply.subarray(i, i + 1));
          i++;
          setImmediate(drip);
        }
      };
      drip();
    });
  });
  const client = await open(t, port);
  const results = await within(Promise.all([client.login('alice'), client.read(), client.read(), client.compose('bob', 'x')]), 'replies');
  t.deepEqual(results, [2, { from: 'bob', message: 'a\rb', raw: Buffer.from('a\rb') }, null, true]);
});

for (const [what, reply, code] of [
  ['a LOGIN reply that is not a count', 'hello\n', 'PH_ERR_CLIENT_UNEXPECTED_REPLY'],
  ['a LOGIN count with a sign', '-1\n', 'PH_ERR_CLIENT_UNEXPECTED_REPLY'],
  ['a reply line over maxLineBytes', `${'9'.repeat(400)}`, 'PH_ERR_CLIENT_UNEXPECTED_REPLY'],
] as const) {
  test(`${what} rejects with ${code} and closes the connection`, async (t) => {
    const port = await listenNet(t, (socket) => socket.once('data', () => socket.write(reply)));
    const client = await open(t, port, { maxLineBytes: 300 });
    const login = client.login('bob');
    const read = client.read();
    await within(t.throwsAsync(login, expectCode(code)), 'the rejection');
    await t.throwsAsync(read, { instanceOf: ClientClosedError });
    t.is(client.status, 'closed');
  });
}

test('a READ reply whose sender is not a username is unexpected', async (t) => {
  const port = await listenNet(t, (socket) => socket.once('data', () => socket.write('0\nnot a name\nhi\n')));
  const client = await open(t, port);
  const login = client.login('bob');
  const read = client.read();
  t.is(await within(login, 'login'), 0);
  await within(t.throwsAsync(read, expectCode('PH_ERR_CLIENT_UNEXPECTED_REPLY')), 'read');
  t.is(client.status, 'closed');
});

test('a reply nobody asked for closes the connection, and closed says why', async (t) => {
  const port = await listenNet(t, (socket) => socket.once('data', () => socket.write('0\nextra\n')));
  const client = await open(t, port);
  t.is(await within(client.login('bob'), 'login'), 0);
  const reason = await within(client.closed, 'closed');
  t.true(reason instanceof ClientClosedError);
  t.is((reason?.cause as ClientError | undefined)?.code, 'PH_ERR_CLIENT_UNEXPECTED_REPLY');
});

test('a line after EXIT instead of a close is unexpected', async (t) => {
  const port = await listenNet(t, (socket) => socket.once('data', () => socket.write('surprise\n')));
  const client = await open(t, port);
  await within(t.throwsAsync(client.exit(), expectCode('PH_ERR_CLIENT_UNEXPECTED_REPLY')), 'exit');
});

test('close() rejects pending calls with ClientClosedError and settles closed with null', async (t) => {
  const { port } = await silentServer(t);
  const client = await open(t, port);
  const login = client.login('bob');
  const exit = client.exit();
  client.close();
  await t.throwsAsync(login, { instanceOf: ClientClosedError, message: /close\(\)/ });
  await t.notThrowsAsync(exit, 'EXIT wanted the connection closed, and it is');
  t.is(await client.closed, null);
});

test('connect to a port nobody listens on rejects with PH_ERR_CLIENT_CONNECT_FAILED', async (t) => {
  const net = createNetServer();
  net.listen(0, HOST);
  await once(net, 'listening');
  const { port } = net.address() as AddressInfo;
  await new Promise<void>((resolve) => net.close(() => resolve()));
  const err = await within(t.throwsAsync(connect({ host: HOST, port }), expectCode('PH_ERR_CLIENT_CONNECT_FAILED')), 'connect');
  t.regex(err?.message ?? '', new RegExp(`${HOST}:${port}`));
});

test('connect checks its options', async (t) => {
  await t.throwsAsync(connect({ port: 0 }), { instanceOf: InvalidOptionError, code: 'PH_ERR_OPTION_INVALID' });
  await t.throwsAsync(connect({ port: 70_000 }), { instanceOf: InvalidOptionError });
  await t.throwsAsync(connect({ host: '' }), { instanceOf: InvalidOptionError });
  await t.throwsAsync(connect({ timeoutMs: 0 }), { instanceOf: InvalidOptionError });
  await t.throwsAsync(connect({ maxLineBytes: 10 }), { instanceOf: InvalidOptionError });
  await t.throwsAsync(connect({ timeout: 5 } as never), { instanceOf: InvalidOptionError, code: 'PH_ERR_OPTION_UNKNOWN', message: /timeoutMs/ });
});
