import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { type Logger, formatLine } from '../../lib/logger.js';
import { createServer, kShardBackend } from '../../lib/server.js';
import type { WorkerShards } from '../../lib/shards/worker-shards.js';
import { LineClient } from '../helpers/line-client.js';
import { type ServeProcess, serveProcess as serveProcessOf } from '../helpers/serve-process.js';
import { startServer } from '../helpers/server.js';
import { checkDelivery, drain, flood } from './flood.js';

const MAIN = new URL('../../lib/cli/main.ts', import.meta.url).pathname;
const RECIPIENTS = Array.from({ length: 12 }, (_, i) => `r${i}`);

function dataDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'pigeonhole-durable-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** `pigeonhole serve` on a data directory, as its own process, so it can be killed like a real one. */
const serveProcess = (dir: string, shards: number): Promise<ServeProcess> => serveProcessOf(null, ['--data-dir', dir, '--shards', String(shards)]);

test('SIGKILL mid-flood: after a restart every acknowledged message is there exactly once, in order', async (t) => {
  const dir = dataDir(t);
  const first = await serveProcess(dir, 2);
  t.teardown(() => first.child.kill('SIGKILL'));
  const killed = new Promise<void>((resolve) => {
    // Kill once the flood is well under way (a bounded wait either way).
    setTimeout(() => {
      first.child.kill('SIGKILL');
      resolve();
    }, 1_500);
  });
  const flooded = await flood({ port: first.port, senders: 16, recipients: RECIPIENTS, pipeline: 32, perSender: 100_000, stop: killed });
  await killed;
  if (first.child.exitCode === null && first.child.signalCode === null) await once(first.child, 'exit');
  t.true(flooded.acked.size > 100, `the flood got going before the kill (${flooded.acked.size} acknowledged)`);
  t.true(flooded.acked.size < flooded.sent.size || flooded.sent.size > 0);

  const second = await serveProcess(dir, 2);
  t.teardown(() => second.child.kill('SIGKILL'));
  const delivered = await drain(second.port, RECIPIENTS);
  t.deepEqual(checkDelivery(delivered, flooded, RECIPIENTS), []);
  second.child.kill('SIGTERM');
  const [code] = (await once(second.child, 'exit')) as [number | null];
  t.is(code, 0, 'SIGTERM closes gracefully');
});

test('a shard worker killed mid-flood: nothing acknowledged is lost, nothing is handed out twice', async (t) => {
  const dir = dataDir(t);
  const errors: string[] = [];
  const logger: Logger = { info: () => {}, warn: () => {}, error: (fields, message) => errors.push(formatLine(fields, message)) };
  const { server, port } = await startServer(t, { shards: 2, dataDir: dir, logger });
  const backend = server[kShardBackend] as WorkerShards;

  // Readers take messages while the flood runs and the shard dies, so a READ is pending
  // on the dead shard too.
  let flooding = true;
  const readDuring = new Map<string, { from: string; body: string }[]>();
  const reader = async (user: string): Promise<void> => {
    const client = await LineClient.connect(port);
    const got: { from: string; body: string }[] = [];
    readDuring.set(user, got);
    try {
      await client.send(`LOGIN ${user}\n`);
      await client.readLine();
      for (let round = 0; flooding && round < 2_000; round++) {
        await client.send('READ\nREAD\nREAD\nREAD\n');
        for (let i = 0; i < 4; i++) {
          const first = (await client.readLine()).toString();
          if (first !== 'READ ERROR') got.push({ from: first, body: (await client.readLine()).toString() });
        }
      }
    } catch {
      // A READ pending on the killed shard may drop this connection: allowed, never a wrong answer.
    } finally {
      client.destroy();
    }
  };
  const readers = RECIPIENTS.slice(0, 4).map((user) => reader(user));
  const floodDone = flood({ port, senders: 8, recipients: RECIPIENTS, pipeline: 32, perSender: 600 });
  await new Promise((resolve) => setTimeout(resolve, 300));
  await backend.terminate(0);
  const flooded = await floodDone;
  flooding = false;
  await Promise.all(readers);

  t.is(server.shards()[0]?.restarts, 1);
  t.true(errors.some((message) => message.includes('shard 0')), 'the crash is logged');
  // Batches the dead shard had not answered were sent to its replacement: no COMPOSE failed.
  t.is(flooded.failed.size, 0);
  t.is(flooded.acked.size, 8 * 600);
  const delivered = await drain(port, RECIPIENTS);
  for (const [user, messages] of readDuring) delivered.set(user, [...messages, ...(delivered.get(user) ?? [])]);
  t.deepEqual(checkDelivery(delivered, flooded, RECIPIENTS), []);
});

for (const [from, to] of [
  [2, 3],
  [3, 1],
  [2, 0],
] as const) {
  test(`changing --shards from ${from} to ${to} keeps every message, in order`, async (t) => {
    const dir = dataDir(t);
    const before = createServer({ shards: from, dataDir: dir, logger: { info: () => {}, warn: () => {}, error: () => {} } });
    const { port } = await before.listen({ port: 0 });
    const flooded = await flood({ port, senders: 4, recipients: RECIPIENTS, pipeline: 16, perSender: 60 });
    await before.close();
    t.is(flooded.acked.size, 4 * 60);

    const infos: string[] = [];
    const { port: after } = await startServer(t, { shards: to, dataDir: dir, logger: { info: (_fields, m) => infos.push(m), warn: () => {}, error: () => {} } });
    t.true(infos.some((m) => m.includes('moved 240 stored messages')), infos.join('\n'));
    t.deepEqual(checkDelivery(await drain(after, RECIPIENTS), flooded, RECIPIENTS), []);
  });
}

test('an unusable data directory is a clear error at start, from the API and the CLI', async (t) => {
  const dir = dataDir(t);
  const notADir = join(dir, 'file');
  writeFileSync(notADir, 'x');
  const server = createServer({ shards: 1, dataDir: join(notADir, 'data') });
  const error = await t.throwsAsync(server.listen({ port: 0 }));
  t.is((error as { code?: string }).code, 'PH_ERR_STORE_OPEN_FAILED');
  t.deepEqual(server.shards(), [], 'no shard was started');

  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve', '--port', '0', '--data-dir', join(notADir, 'data')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  t.is(code, 1);
  t.regex(stderr, /data directory .*file\/data is not usable: ENOTDIR/);
  t.notRegex(stderr, /\n\s+at /, 'no stack trace for an expected failure');
});

test('a full store: COMPOSE answers MESSAGE FAILED, the server keeps serving, stored messages are intact', async (t) => {
  const dir = dataDir(t);
  const errors: string[] = [];
  const logger: Logger = { info: () => {}, warn: () => {}, error: (fields, message) => errors.push(formatLine(fields, message)) };
  const { login } = await startServer(t, { shards: 1, dataDir: dir, maxStoreBytes: 256 * 1024, maxMessagesPerUser: 100_000, logger });
  const bob = await login('bob');
  await bob.send('COMPOSE alice\nfirst\n');
  t.is((await bob.readLine()).toString(), 'MESSAGE SENT');
  const big = 'x'.repeat(8000);
  let failed = 0;
  for (let i = 0; i < 100 && failed === 0; i++) {
    await bob.send(`COMPOSE alice\n${big}\n`);
    const reply = (await bob.readLine()).toString();
    if (reply === 'MESSAGE FAILED') failed++;
    else t.is(reply, 'MESSAGE SENT');
  }
  t.is(failed, 1, 'the store filled up within 100 messages of 8 kB');
  t.true(errors.some((message) => message.includes('PH_ERR_STORE_FULL')), 'the reason is logged');

  const alice = await login('alice');
  await alice.send('READ\n');
  t.deepEqual(await alice.lines(2), ['bob', 'first']);
  // Reading freed room: the store takes writes again.
  await bob.send('COMPOSE carol\nafter\n');
  t.is((await bob.readLine()).toString(), 'MESSAGE SENT');
});

test('a data directory serves one server at a time; the lock goes with close()', async (t) => {
  const dir = dataDir(t);
  const quiet = { info: () => {}, warn: () => {}, error: () => {} };
  const first = createServer({ shards: 0, dataDir: dir, logger: quiet });
  await first.listen({ port: 0 });
  // A second server, even one asking for another layout, must not touch the files the
  // first has open (it would migrate them away).
  const second = createServer({ shards: 2, dataDir: dir, logger: quiet });
  const error = await t.throwsAsync(second.listen({ port: 0 }));
  t.is((error as { code?: string }).code, 'PH_ERR_STORE_OPEN_FAILED');
  t.regex(error?.message ?? '', /is in use by another pigeonhole process/);
  t.deepEqual(readdirSync(dir).filter((entry) => entry.startsWith('gen-')), ['gen-1'], 'the refused server migrated nothing');
  await first.close();
  const third = createServer({ shards: 2, dataDir: dir, logger: quiet });
  t.teardown(() => third.close());
  await t.notThrowsAsync(third.listen({ port: 0 }));
});

test('the lock holds across processes and dies with its process (kill -9)', async (t) => {
  const dir = dataDir(t);
  const other = await serveProcess(dir, 1);
  t.teardown(() => other.child.kill('SIGKILL'));
  const quiet = { info: () => {}, warn: () => {}, error: () => {} };
  const refused = createServer({ shards: 0, dataDir: dir, logger: quiet });
  const error = await t.throwsAsync(refused.listen({ port: 0 }));
  t.regex(error?.message ?? '', /is in use by another pigeonhole process/);
  other.child.kill('SIGKILL');
  await once(other.child, 'exit');
  const after = createServer({ shards: 0, dataDir: dir, logger: quiet });
  t.teardown(() => after.close());
  await t.notThrowsAsync(after.listen({ port: 0 }));
});
