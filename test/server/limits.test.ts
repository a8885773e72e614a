// Limits on what clients may hold: connections (in all and per address), time to finish a
// line, memory for unfinished lines, and the store's size in memory. Over a limit, a
// connection is closed without a word, counted and logged.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect as netConnect } from 'node:net';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { type Logger, formatLine } from '../../lib/logger.js';
import { mailboxCost } from '../../lib/store/memory.js';
import { senderCost } from '../../lib/store/sender-table.js';
import { LineClient, compose, tick, until } from '../helpers/line-client.js';
import { serveProcess } from '../helpers/serve-process.js';
import { startServer } from '../helpers/server.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function recorder(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const keep = (fields: Parameters<Logger['warn']>[0], message: string): void => {
    lines.push(formatLine(fields, message));
  };
  return { logger: { info: () => {}, warn: keep, error: keep }, lines };
}

test('a line trickled in byte by byte is cut lineTimeoutMs after its first byte, though the idle clock never runs out', async (t) => {
  const { logger, lines } = recorder();
  const { server, connect } = await startServer(t, { idleTimeoutMs: 5_000, lineTimeoutMs: 1_000, logger });
  const client = await connect();
  const text = 'LOGIN a-trickler-whose-line-would-take-eight-seconds';
  let sent = 0;
  const trickle = setInterval(() => {
    if (!client.closed && sent < text.length) client.socket.write(text[sent++] as string);
  }, 150);
  t.teardown(() => clearInterval(trickle));
  // Bytes come every 150 ms, so the 5 s idle timeout never fires while it trickles; only
  // the line's own clock can end it, long before the line is done.
  const closed = await client.waitClosed(7_000);
  clearInterval(trickle);
  t.is(closed.trailing.length, 0, 'no reply was sent');
  t.is(server.limitCounts.lineTimeouts, 1);
  t.true(lines.some((line) => line.includes('PH_ERR_LIMIT_LINE_TIMEOUT')), lines.join('\n'));
});

test('complete lines are never timed, however slowly they follow each other', async (t) => {
  const { server, login } = await startServer(t, { idleTimeoutMs: 10_000, lineTimeoutMs: 500 });
  const client = await login('slow-but-whole');
  await tick(1_500);
  await client.send('READ\n');
  t.is((await client.readLine()).toString(), 'READ ERROR');
  t.is(server.limitCounts.lineTimeouts, 0);
});

test('past maxConnections a new connection is closed at once, unanswered and counted; a freed slot is taken again', async (t) => {
  const { logger, lines } = recorder();
  const { server, port, login } = await startServer(t, { maxConnections: 2, logger });
  const a = await login('first');
  await login('second');
  const refused = await LineClient.connect(port);
  t.teardown(() => refused.destroy());
  const closed = await refused.waitClosed();
  t.is(closed.trailing.length, 0);
  t.is(refused.bytesReceived, 0, 'not a byte sent to it');
  t.is(server.limitCounts.refusedConnections, 1);
  t.true(lines.some((line) => line.includes('PH_ERR_LIMIT_CONNECTIONS')), lines.join('\n'));

  a.destroy();
  // Bounded retries until the server has seen the close.
  let third: LineClient | null = null;
  for (let attempt = 0; attempt < 100 && third === null; attempt++) {
    const candidate = await LineClient.connect(port);
    t.teardown(() => candidate.destroy());
    await candidate.send('LOGIN third\n');
    try {
      t.is((await candidate.readLine(2_000)).toString(), '0');
      third = candidate;
    } catch {
      await tick(50);
    }
  }
  t.not(third, null, 'a connection is accepted once a slot is free');
});

test('past maxConnectionsPerIp one address is refused while another is served', async (t) => {
  const { server, port, login } = await startServer(t, { maxConnectionsPerIp: 2 });
  await login('one');
  await login('two');
  const refused = await LineClient.connect(port);
  t.teardown(() => refused.destroy());
  await refused.waitClosed();
  t.is(refused.bytesReceived, 0);
  t.is(server.limitCounts.refusedPerIp, 1);

  // The server is still reached at 127.0.0.1, from another loopback address.
  const socket = netConnect({ port, host: '127.0.0.1', localAddress: '127.0.0.2', noDelay: true });
  await once(socket, 'connect');
  const other = new LineClient(socket);
  t.teardown(() => other.destroy());
  await other.send('LOGIN three\n');
  t.is((await other.readLine()).toString(), '0');
});

test('past maxConnectionRatePerIp new connections in a second, one address is refused while another is served, and let in again a second later', async (t) => {
  const { logger, lines } = recorder();
  const { server, port, login } = await startServer(t, { maxConnectionRatePerIp: 3, logger });
  // Connections that closed still count: it is the rate of opening them that is limited.
  for (const name of ['one', 'two']) (await login(name)).destroy();
  const third = await login('three');
  const refused = await LineClient.connect(port);
  t.teardown(() => refused.destroy());
  await refused.waitClosed();
  t.is(refused.bytesReceived, 0);
  t.is(server.limitCounts.refusedRatePerIp, 1);
  t.is(server.limitCounts.refusedPerIp, 0);
  t.true(lines.some((line) => line.includes('PH_ERR_LIMIT_CONNECTION_RATE_PER_IP') && line.includes('maxConnectionRatePerIp')), lines.join('\n'));
  // Open connections are not cut.
  await third.send('COMPOSE three\nstill here\n');
  t.is((await third.readLine()).toString(), 'MESSAGE SENT');

  const socket = netConnect({ port, host: '127.0.0.1', localAddress: '127.0.0.2', noDelay: true });
  await once(socket, 'connect');
  const other = new LineClient(socket);
  t.teardown(() => other.destroy());
  await other.send('LOGIN four\n');
  t.is((await other.readLine()).toString(), '0', 'another address has a rate of its own');

  // Within two seconds the first address has room again; attempts refused meanwhile do not count.
  const started = Date.now();
  let again: LineClient | null = null;
  while (again === null && Date.now() - started < 3_000) {
    const client = await LineClient.connect(port);
    t.teardown(() => client.destroy());
    await client.send('LOGIN five\n');
    // A refused connection is closed unanswered: the read fails.
    const reply = await client.readLine().then(String, () => null);
    if (reply === '0') again = client;
    else await tick(100);
  }
  t.not(again, null, 'let in again within two seconds');
});

test('past maxLineBufferBytes of unfinished lines in all, the connection holding the most is closed first', async (t) => {
  const { server, login } = await startServer(t, { maxLineBytes: 65_536, maxLineBufferBytes: 100_000 });
  const big = await login('big');
  const middle = await login('middle');
  const small = await login('small');
  await big.send(`COMPOSE x\n${'a'.repeat(60_000)}`);
  await middle.send(`COMPOSE x\n${'b'.repeat(30_000)}`);
  await small.send(`COMPOSE x\n${'c'.repeat(20_000)}`);
  await big.waitClosed();
  t.is(server.limitCounts.lineBufferDrops, 1);
  // The others, back under the budget, finish their lines and are answered.
  await middle.send('\n');
  await small.send('\n');
  t.is((await middle.readLine()).toString(), 'MESSAGE SENT');
  t.is((await small.readLine()).toString(), 'MESSAGE SENT');
});

test('past maxReplyBufferBytes of replies not taken in all, the connection holding the most is closed; one that reads is served', async (t) => {
  // Just above what one connection may hold (4 MiB in flight and a reply): two sinks pass it.
  const { server, port, login } = await startServer(t, { maxReplyBufferBytes: 5 * 1024 * 1024 });
  const body = 'h'.repeat(60_000);
  const sinks = ['hoard-a', 'hoard-b', 'hoard-c'];
  const filler = await login('filler');
  // Runs of 64 big messages, each after 40 small ones: a READ counts in the fair shares
  // what its connection's READ replies have been lately, and the small ones bring that
  // down, so each run of big ones is asked for in one go, up to the 4 MiB a connection
  // may have in flight. (A client reading only big messages would be held to its fair
  // share of 1 MiB long before.)
  const stock = Array.from({ length: 4 }, () => [...Array<string>(40).fill('tiny'), ...Array<string>(64).fill(body)]).flat();
  for (const user of sinks) {
    await filler.send(Buffer.concat(stock.map((text) => compose(user, text))));
    t.true((await filler.lines(stock.length)).every((line) => line === 'MESSAGE SENT'));
  }
  // Clients that ask for all of them and take none: once the kernel's buffers are full,
  // each holds up to its 4 MiB in flight in the server.
  for (const user of sinks) {
    const sink = await LineClient.connect(port);
    t.teardown(() => sink.destroy());
    sink.socket.pause();
    await sink.send(`LOGIN ${user}\n${'READ\n'.repeat(stock.length)}`);
  }
  await until(() => server.limitCounts.replyBufferDrops >= 1, 'a sink is cut');
  // A client that reads its replies holds next to nothing, and is served.
  await filler.send(`${compose('filler', body).toString()}READ\n`);
  t.deepEqual(await filler.lines(3), ['MESSAGE SENT', 'filler', body]);
  t.true(server.limitCounts.replyBufferDrops <= 2, 'the sinks holding the most, until the rest fit');
});

test('a connection the server cuts takes no message with a READ it sent in the same read: the READ is withdrawn', async (t) => {
  const { login } = await startServer(t, { maxLineBytes: 65_536, maxLineBufferBytes: 100_000 });
  const bob = await login('bob');
  await bob.send(compose('alice', 'kept'));
  t.is((await bob.readLine()).toString(), 'MESSAGE SENT');
  const holder = await login('holder');
  await holder.send(`COMPOSE x\n${'b'.repeat(45_000)}`);
  // alice's READ and, in the same read, the start of a line that makes her the biggest
  // holder when all together pass maxLineBufferBytes: she is cut before the READ leaves.
  const alice = await login('alice');
  await alice.send(`READ\nCOMPOSE x\n${'a'.repeat(60_000)}`);
  await alice.waitClosed();
  const again = await login('alice');
  await again.send('READ\n');
  t.deepEqual(await again.lines(2), ['bob', 'kept']);
});

test('whole lines waiting behind backpressure are not unfinished lines: pipelined clients are served, not cut', async (t) => {
  const { server, login } = await startServer(t, { maxInFlight: 2, maxLineBufferBytes: 100_000 });
  // 60 kB of complete READ lines each, in one write: paused after two commands, each
  // connection holds most of a read of whole lines, 120 kB together, but not one byte
  // of an unfinished line.
  const reads = 12_000;
  const clients = await Promise.all([login('piper-a'), login('piper-b')]);
  const answered = await Promise.all(
    clients.map(async (client) => {
      await client.send('READ\n'.repeat(reads));
      const replies = await client.lines(reads);
      return replies.filter((line) => line === 'READ ERROR').length;
    }),
  );
  t.deepEqual(answered, [reads, reads]);
  t.is(server.limitCounts.lineBufferDrops, 0);
});

test('in memory, past maxStoreBytes COMPOSE fails and READs go on; a READ makes room again', async (t) => {
  const { login } = await startServer(t, { maxStoreBytes: 1024 * 1024 });
  const hoarder = await login('hoarder');
  const body = 'h'.repeat(60_000);
  let sent = 0;
  let failed = false;
  // To new names each time, as a hoarder would.
  for (let i = 0; i < 100 && !failed; i++) {
    await hoarder.send(compose(`name${i}`, body));
    const reply = (await hoarder.readLine()).toString();
    if (reply === 'MESSAGE SENT') sent++;
    else failed = reply === 'MESSAGE FAILED';
  }
  t.true(failed, 'refused before 100 messages of 60 kB');
  // What the store counts for each: a new mailbox (with its name), and the chunk that
  // holds the message (its bytes, a 1-byte sender id and a 3-byte length); and once, the sender.
  const each = (i: number): number => mailboxCost(`name${i}`) + body.length + 4;
  let fits = 0;
  for (let held = senderCost('hoarder') + each(0); held <= 1024 * 1024; held += each(fits)) fits++;
  t.is(sent, fits);
  const reader = await login('name0');
  await reader.send('READ\n');
  t.deepEqual(await reader.lines(2), ['hoarder', body]);
  await hoarder.send(compose('one-more', body));
  t.is((await hoarder.readLine()).toString(), 'MESSAGE SENT');
});

test('under a low descriptor limit the default maxConnections refuses first, and each refusal is in the log', async (t) => {
  const child = spawn('sh', ['-c', `ulimit -n 200 && exec "${process.execPath}" --import tsx lib/cli/main.ts serve --memory --port 0 --shards 0`], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => child.kill('SIGKILL'));
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let stdout = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no start: ${stderr}`)), 20_000);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(stdout);
      if (match !== null) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
  });
  // 200 descriptors leave 72 for connections: of 100, 28 are refused by the server itself.
  const clients = await Promise.all(Array.from({ length: 100 }, () => LineClient.connect(port)));
  t.teardown(() => clients.forEach((client) => client.destroy()));
  const answered = await Promise.all(
    clients.map(async (client, i) => {
      try {
        await client.send(`LOGIN c${i}\n`);
        await client.readLine(10_000);
        return true;
      } catch {
        return false;
      }
    }),
  );
  const refused = answered.filter((ok) => !ok).length;
  t.is(refused, 28);
  child.kill('SIGTERM');
  await once(child, 'exit');
  // The first refusal at once; the others in one line with their count, at the latest on close.
  const logged = stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { code?: string; repeats?: number })
    .filter((entry) => entry.code === 'PH_ERR_LIMIT_CONNECTIONS');
  t.true(logged.length >= 1, stderr);
  const repeats = logged.reduce((sum, entry) => sum + (entry.repeats ?? 0), 0);
  t.is(logged.filter((entry) => entry.repeats === undefined).length + repeats, refused, stderr);
});

test('a flood of COMPOSEs to ever new names meets the mailboxes its shard\'s heap can hold, not the end of the heap: the shard lives, and what it held stays', async (t) => {
  // A heap of 112 MiB in every thread: a shard holds about 57,000 mailboxes, where it
  // would run out of heap at about 90,000.
  const served = await serveProcess(t, ['--memory', '--shards', '1'], { NODE_OPTIONS: '--max-old-space-size=64' });
  const alice = await LineClient.connect(served.port);
  t.teardown(() => alice.destroy());
  await alice.send(`LOGIN alice\n${compose('bob', 'kept').toString()}`);
  t.deepEqual(await alice.lines(2), ['0', 'MESSAGE SENT']);
  let refused = 0;
  let sent = 0;
  for (let next = 0; next < 150_000 && refused === 0; next += 2_000) {
    await alice.send(Array.from({ length: 2_000 }, (_, i) => `COMPOSE n${next + i}\nx\n`).join(''));
    for (const reply of await alice.lines(2_000)) {
      if (reply === 'MESSAGE SENT') sent++;
      else if (reply === 'MESSAGE FAILED') refused++;
      else t.fail(`unexpected reply ${reply}`);
    }
  }
  t.true(refused > 0 && sent > 10_000, `${sent} sent, ${refused} refused`);
  const bob = await LineClient.connect(served.port);
  t.teardown(() => bob.destroy());
  await bob.send('LOGIN bob\nREAD\n');
  t.deepEqual(await bob.lines(3), ['1', 'alice', 'kept']);
  t.notRegex(served.stderr(), /worker died|PH_ERR_SHARD_CRASHED/);
});
