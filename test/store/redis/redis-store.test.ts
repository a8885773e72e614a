// What the Redis store does beyond the contract: its keys, its function library, the
// cap under concurrent writers, WAIT, and a Redis that goes away and comes back. One real
// redis-server (with an append-only file, so a crash keeps what it acknowledged).
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from '@redis/client';
import type { ExecutionContext } from 'ava';
import { StoreError } from '../../../lib/errors.js';
import type { LogFields, Logger } from '../../../lib/logger.js';
import { LIBRARY_NAME } from '../../../lib/store/redis/library.js';
import { decodeRecord, mailboxKey } from '../../../lib/store/redis/records.js';
import { RedisStore, type RedisStoreOptions } from '../../../lib/store/redis/redis-store.js';
import { closedPort } from '../../helpers/cli.js';
import { redisTest, redisUrl, useRedisServer } from '../../helpers/redis.js';
import { uniqueName } from '../../helpers/server.js';

const server = useRedisServer({ persist: true });
const redisOnly = redisTest();

const body = (text: string): Buffer => Buffer.from(text);

async function open(t: ExecutionContext, options: Partial<RedisStoreOptions> = {}): Promise<RedisStore> {
  const store = await RedisStore.open({ target: { url: redisUrl(server()) }, maxMessagesPerUser: 1024, keyPrefix: uniqueName('t'), ...options });
  t.teardown(() => store.close().catch(() => {}));
  return store;
}

/** A raw node-redis client on the test server, for what the store would never do itself. */
async function raw(t: ExecutionContext) {
  const client = createClient({ url: redisUrl(server()) });
  client.on('error', () => {});
  await client.connect();
  t.teardown(() => client.close().catch(() => {}));
  return client;
}

function recordingLogger(): Logger & { lines: { level: string; fields: LogFields; message: string }[] } {
  const lines: { level: string; fields: LogFields; message: string }[] = [];
  return {
    lines,
    info: (fields, message) => lines.push({ level: 'info', fields, message }),
    warn: (fields, message) => lines.push({ level: 'warn', fields, message }),
    error: (fields, message) => lines.push({ level: 'error', fields, message }),
  };
}

redisOnly('keys put the user in a hash tag, escaping what would end it early', (t) => {
  t.is(mailboxKey('ph', 'alice').toString(), 'ph:{alice}:inbox');
  t.is(mailboxKey('ph', 'a}b').toString(), 'ph:{a%7Db}:inbox');
  t.is(mailboxKey('ph', '{%}').toString(), 'ph:{%7B%25%7D}:inbox');
  t.is(mailboxKey('x', '%7D').toString(), 'x:{%257D}:inbox', 'an escape-looking name is escaped itself');
});

redisOnly('a record pigeonhole did not write is a PH_ERR_STORE_BAD_RECORD, not a message', async (t) => {
  t.throws(() => decodeRecord(Buffer.from('nospace')), { instanceOf: StoreError, code: 'PH_ERR_STORE_BAD_RECORD' });
  t.throws(() => decodeRecord(Buffer.from(' leading space')), { code: 'PH_ERR_STORE_BAD_RECORD' });
  const prefix = uniqueName('bad');
  const store = await open(t, { keyPrefix: prefix });
  await (await raw(t)).rPush(mailboxKey(prefix, 'bob'), 'foreign');
  await t.throwsAsync(store.dequeue('bob'), { instanceOf: StoreError, code: 'PH_ERR_STORE_BAD_RECORD' });
});

redisOnly('a missing function library is loaded again and the COMPOSE stored once', async (t) => {
  const store = await open(t);
  const client = await raw(t);
  t.true((await store.enqueue('bob', { from: 'alice', body: body('before') })).ok);
  await client.sendCommand(['FUNCTION', 'FLUSH']);
  t.deepEqual(await client.sendCommand(['FUNCTION', 'LIST', 'LIBRARYNAME', LIBRARY_NAME]), [], 'the library is gone');
  t.true((await store.enqueue('bob', { from: 'alice', body: body('after') })).ok);
  t.is(await store.count('bob'), 2, 'stored exactly once');
  t.is((await client.sendCommand<unknown[]>(['FUNCTION', 'LIST', 'LIBRARYNAME', LIBRARY_NAME])).length, 1, 'the library is back');
  t.is((await store.dequeue('bob'))?.body.toString(), 'before');
  t.is((await store.dequeue('bob'))?.body.toString(), 'after');
});

redisOnly('an unreachable Redis at open is PH_ERR_STORE_OPEN_FAILED, naming where', async (t) => {
  const port = await closedPort();
  const err = await t.throwsAsync(RedisStore.open({ target: { url: `redis://127.0.0.1:${port}` }, maxMessagesPerUser: 10 }), { instanceOf: StoreError, code: 'PH_ERR_STORE_OPEN_FAILED' });
  t.regex(err?.message ?? '', new RegExp(`cannot reach Redis at redis://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`));
});

redisOnly('the cap holds when two stores (two nodes) fill one mailbox at once', async (t) => {
  const prefix = uniqueName('race');
  const one = await open(t, { keyPrefix: prefix, maxMessagesPerUser: 50 });
  const two = await open(t, { keyPrefix: prefix, maxMessagesPerUser: 50 });
  const results = await Promise.all(
    Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? one : two).enqueue('bob', { from: i % 2 === 0 ? 'one' : 'two', body: body(`m${i}`) })),
  );
  t.is(results.filter((result) => result.ok).length, 50);
  t.is(await one.count('bob'), 50);
  // Each writer's messages come out in the order it sent them.
  const seen: Record<string, number[]> = { one: [], two: [] };
  for (let message = await two.dequeue('bob'); message !== null; message = await two.dequeue('bob')) {
    seen[message.from]?.push(Number(message.body.toString().slice(1)));
  }
  for (const from of ['one', 'two']) t.deepEqual(seen[from], [...(seen[from] ?? [])].sort((a, b) => a - b), `${from} in order`);
});

redisOnly('with waitReplicas and no replica, COMPOSE is stored but rejects PH_ERR_STORE_NOT_REPLICATED', async (t) => {
  const store = await open(t, { waitReplicas: 1, waitTimeoutMs: 50 });
  const err = await t.throwsAsync(store.enqueue('bob', { from: 'alice', body: body('hi') }), { instanceOf: StoreError, code: 'PH_ERR_STORE_NOT_REPLICATED' });
  t.regex(err?.message ?? '', /only 0 of 1 replica/);
  t.is(await store.count('bob'), 1, 'the master has it: MESSAGE FAILED would have been a lie');
  const zero = await open(t, { waitReplicas: 0 });
  t.true((await zero.enqueue('bob', { from: 'alice', body: body('no wait') })).ok);
});

redisOnly('Redis lost and back: writes fail or are unknown, reads have no answer, then service resumes', async (t) => {
  const logger = recordingLogger();
  const store = await open(t, { logger });
  t.true((await store.enqueue('bob', { from: 'alice', body: body('kept') })).ok);
  // In flight as Redis dies: each is stored and acknowledged, refused, or unknown, never a false answer.
  const inFlight = Array.from({ length: 20 }, (_, i) => store.enqueue('bob', { from: 'alice', body: body(`flight ${i}`) }).then(
    (result) => (result.ok ? 'sent' : result.reason),
    (err: unknown) => (err instanceof StoreError ? err.code : 'bug'),
  ));
  await server().crash();
  const outcomes = await Promise.all(inFlight);
  t.true(outcomes.every((outcome) => ['sent', 'unavailable', 'PH_ERR_STORE_OUTCOME_UNKNOWN'].includes(outcome)), outcomes.join());

  // While down: nothing is sent, so a COMPOSE certainly failed; a READ or LOGIN has no answer.
  await sleep(100);
  t.deepEqual({ ...(await store.enqueue('bob', { from: 'alice', body: body('while down') })) }, { ok: false, reason: 'unavailable' });
  await t.throwsAsync(store.dequeue('bob'), { instanceOf: StoreError, code: 'PH_ERR_STORE_UNAVAILABLE' });
  await t.throwsAsync(store.count('bob'), { instanceOf: StoreError, code: 'PH_ERR_STORE_UNAVAILABLE' });
  t.true(logger.lines.some((line) => line.level === 'error' && line.fields.code === 'PH_ERR_STORE_UNAVAILABLE' && /lost the connection/.test(line.message)));

  await server().restart();
  let back = false;
  for (let i = 0; i < 100 && !back; i++) {
    back = (await store.enqueue('bob', { from: 'alice', body: body('after') })).ok;
    if (!back) await sleep(100);
  }
  t.true(back, 'service resumed without reopening the store');
  t.true(logger.lines.some((line) => line.level === 'warn' && /is back/.test(line.message)));
  // Acknowledged before the crash: still there (appendfsync always), in order, once each.
  const bodies: string[] = [];
  for (let message = await store.dequeue('bob'); message !== null; message = await store.dequeue('bob')) bodies.push(message.body.toString());
  const sent = outcomes.flatMap((outcome, i) => (outcome === 'sent' ? [`flight ${i}`] : []));
  const failed = outcomes.flatMap((outcome, i) => (outcome === 'unavailable' ? [`flight ${i}`] : []));
  t.is(bodies[0], 'kept');
  t.is(bodies.at(-1), 'after');
  for (const message of sent) t.is(bodies.filter((b) => b === message).length, 1, `${message} acknowledged, present once`);
  for (const message of failed) t.false(bodies.includes(message), `${message} failed, never stored`);
  t.false(bodies.includes('while down'));
});
