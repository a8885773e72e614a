// Sharing one port between threads: where it can be done, how, and the descriptor of
// its own that a thread listens on (closing it leaves the listening socket open).
import { EventEmitter, once } from 'node:events';
import { type AddressInfo, type Server as NetServer, type Socket, createServer } from 'node:net';
import test from 'ava';
import { acceptorsUnsupported, hasReusePort, listeningDescriptor, takeListeningHandle } from '../../lib/acceptors/shared-port.js';
import { AcceptBalance } from '../../lib/acceptors/balance.js';
import { SharedConnections } from '../../lib/session/shared-connections.js';
import { HOST, LineClient } from '../helpers/line-client.js';

test('several acceptors need Linux; other platforms get a reason', (t) => {
  t.is(acceptorsUnsupported('linux'), null);
  for (const platform of ['darwin', 'win32', 'freebsd'] as const) t.regex(acceptorsUnsupported(platform) ?? '', new RegExp(`need Linux \\(this is ${platform}\\)`));
});

test('reusePort is there from Node 22.12 and 23.1 on', (t) => {
  for (const version of ['22.12.0', '22.20.1', '23.1.0', '24.0.0']) t.true(hasReusePort(version), version);
  for (const version of ['20.20.2', '22.11.0', '23.0.0', '18.20.0']) t.false(hasReusePort(version), version);
});

test.serial('a descriptor of its own: a second server accepts on the same port, and closing it leaves the first one listening', async (t) => {
  if (process.platform !== 'linux') {
    t.pass('Linux only');
    return;
  }
  const served: string[] = [];
  const serve = (name: string) => (socket: Socket) => {
    served.push(name);
    socket.end(`${name}\n`);
  };
  const first = createServer(serve('first'));
  first.listen(0, HOST);
  await once(first, 'listening');
  t.teardown(() => first.close());
  const { port } = first.address() as AddressInfo;

  const second = createServer(serve('second'));
  second.listen(await takeListeningHandle(listeningDescriptor(first)));
  await once(second, 'listening');
  t.is((second.address() as AddressInfo).port, port, 'the same socket');
  // Both accept from the one queue; connect until the second has served one (bounded).
  for (let i = 0; i < 200 && !served.includes('second'); i++) await (await LineClient.connect(port)).waitClosed();
  t.true(served.includes('second'), `served: ${served.slice(-5).join(', ')}`);

  await new Promise<void>((resolve) => second.close(() => resolve()));
  served.length = 0;
  for (let i = 0; i < 5; i++) {
    const client = await LineClient.connect(port);
    t.deepEqual(await client.lines(1), ['first']);
  }
  t.deepEqual(served, ['first', 'first', 'first', 'first', 'first']);
});

test('an acceptor steps back while it holds more than an even share (with a little slack)', (t) => {
  const shared = SharedConnections.create(2);
  const [mine, other] = [shared.tally(0, 1_000, 0), shared.tally(1, 1_000, 0)];
  const balance = new AcceptBalance(shared, 0);
  for (let i = 0; i < 2; i++) mine.take('192.0.2.1');
  t.false(balance.over, '2 of 2: one connection over the share makes no one wait');
  mine.take('192.0.2.1');
  t.true(balance.over, '3 of 3');
  for (let i = 0; i < 20; i++) mine.take('192.0.2.1');
  for (let i = 0; i < 10; i++) other.take('192.0.2.1');
  t.true(balance.over, '23 of 33, more than 16.5 plus slack');
  t.false(new AcceptBalance(shared, 1).over, 'the other thread takes them');
  for (let i = 0; i < 10; i++) other.take('192.0.2.1');
  t.false(balance.over, '23 of 43: within the slack');
});

test('an acceptor kept over its share steps back for at most a tenth of each second, and not at all for a connection it refused', (t) => {
  const shared = SharedConnections.create(2);
  const mine = shared.tally(0, 1_000, 0);
  for (let i = 0; i < 50; i++) mine.take('192.0.2.1');
  const balance = new AcceptBalance(shared, 0);
  t.true(balance.over);
  // Nobody else takes connections: each accept would wait its 10 steps, but the second's
  // budget runs out after 100 of them.
  const steps = Array.from({ length: 30 }, () => balance.accepted());
  t.is(steps[0], 10);
  t.is(
    steps.reduce((sum, n) => sum + n, 0),
    100,
  );
  t.is(steps.at(-1), 0);

  const server = new EventEmitter() as unknown as NetServer;
  const kept = AcceptBalance.keep(server, shared, 1);
  const other = shared.tally(1, 1_000, 0);
  for (let i = 0; i < 200; i++) other.take('192.0.2.2');
  // Refused by a limit (destroyed by the server's listener before): no step back.
  server.emit('connection', { destroyed: true });
  t.is(kept.steppedMs, 0);
  server.emit('connection', { destroyed: false });
  t.is(kept.steppedMs, 10);
});
