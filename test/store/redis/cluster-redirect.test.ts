// WAIT after a COMPOSE that a Redis Cluster redirected: a slot being migrated answers
// ASK, a slot moved answers MOVED, and the write runs on another node than the one the
// slot map names. WAIT counts the replicas of the writes on its own connection, so it
// must follow the write to the node that ran it. A cluster of its own: the tests move
// slots and add replicas.
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from '@redis/client';
import type { ExecutionContext } from 'ava';
import { RedisProcess, findRedisServer } from '../../../bench/redis.js';
import { StoreError } from '../../../lib/errors.js';
import { mailboxKey } from '../../../lib/store/redis/records.js';
import { RedisStore } from '../../../lib/store/redis/redis-store.js';
import { redisTest, useRedisCluster } from '../../helpers/redis.js';
import { uniqueName } from '../../helpers/server.js';

const cluster = useRedisCluster();
const redisOnly = redisTest();
const SETTLE_TIMEOUT_MS = 15_000;

const adminClient = (port: number) => createClient({ socket: { host: '127.0.0.1', port } });
type Admin = ReturnType<typeof adminClient>;

async function admin(t: ExecutionContext, node: RedisProcess): Promise<Admin> {
  const client = adminClient(node.port);
  client.on('error', () => {});
  await client.connect();
  t.teardown(() => client.close().catch(() => {}));
  return client;
}

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(50);
  }
}

const keysIn = async (client: Admin, slot: number): Promise<number> => Number(await client.sendCommand(['CLUSTER', 'COUNTKEYSINSLOT', String(slot)]));
const myId = async (client: Admin): Promise<string> => String(await client.sendCommand(['CLUSTER', 'MYID']));

/** A new cluster node that replicates `master`, in sync before this resolves. */
async function addReplica(t: ExecutionContext, master: RedisProcess): Promise<RedisProcess> {
  const replica = await RedisProcess.start(findRedisServer() as string, { cluster: true, log: 'ignore' });
  t.teardown(() => replica.stop().then(() => {}));
  const masterAdmin = await admin(t, master);
  const replicaAdmin = await admin(t, replica);
  const masterId = await myId(masterAdmin);
  await replicaAdmin.sendCommand(['CLUSTER', 'MEET', '127.0.0.1', String(master.port)]);
  await until('the new node knows the master', async () => String(await replicaAdmin.sendCommand(['CLUSTER', 'NODES'])).includes(masterId));
  await replicaAdmin.sendCommand(['CLUSTER', 'REPLICATE', masterId]);
  await until('the replica is in sync', async () => /slave0:.*state=online/.test(String(await masterAdmin.sendCommand(['INFO', 'replication']))));
  return replica;
}

/** A user whose mailbox's slot `node` serves, and that slot. */
async function userServedBy(node: RedisProcess, client: Admin, prefix: string): Promise<{ user: string; slot: number }> {
  const ranges = (await client.sendCommand<[number, number, [string, number]][]>(['CLUSTER', 'SLOTS'])).filter(([, , owner]) => Number(owner[1]) === node.port);
  for (let i = 0; i < 1_000; i++) {
    const user = `u${i}`;
    const slot = Number(await client.sendCommand(['CLUSTER', 'KEYSLOT', mailboxKey(prefix, user)]));
    if (ranges.some(([from, to]) => slot >= from && slot <= to)) return { user, slot };
  }
  throw new Error('no user of 1,000 falls on this node');
}

/** Starts moving `slot` from `from` to `to`: `from` answers ASK for keys it lacks. */
async function startMigration(t: ExecutionContext, slot: number, from: Admin, to: Admin): Promise<void> {
  const [fromId, toId] = await Promise.all([myId(from), myId(to)]);
  await to.sendCommand(['CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', fromId]);
  await from.sendCommand(['CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', toId]);
  t.teardown(async () => {
    await to.sendCommand(['CLUSTER', 'SETSLOT', String(slot), 'STABLE']).catch(() => {});
    await from.sendCommand(['CLUSTER', 'SETSLOT', String(slot), 'STABLE']).catch(() => {});
  });
}

async function openStore(t: ExecutionContext, prefix: string): Promise<RedisStore> {
  const store = await RedisStore.open({ target: { cluster: cluster().addresses }, maxMessagesPerUser: 100, keyPrefix: prefix, waitReplicas: 1, waitTimeoutMs: 2_000 });
  t.teardown(() => store.close().catch(() => {}));
  return store;
}

redisOnly('a COMPOSE redirected by ASK waits for the replicas of the node that stored it', async (t) => {
  const [a, b] = cluster().nodes as [RedisProcess, RedisProcess];
  const [onA, onB] = [await admin(t, a), await admin(t, b)];
  await addReplica(t, a);
  const prefix = uniqueName('ask');
  const { user, slot } = await userServedBy(a, onA, prefix);
  const store = await openStore(t, prefix);

  // The slot moves from A (which has a replica) to B (which has none). The mailbox is not
  // on A, so A answers ASK and B stores the message. Only B's replicas can confirm it.
  await startMigration(t, slot, onA, onB);
  const err = await t.throwsAsync(store.enqueue(user, { from: 'alice', body: Buffer.from('on B') }), { instanceOf: StoreError, code: 'PH_ERR_STORE_NOT_REPLICATED' });
  t.regex(err?.message ?? '', /only 0 of 1 replica/);
  t.is(await keysIn(onB, slot), 1, 'B stored it');
  t.is(await keysIn(onA, slot), 0, 'A did not');

  // Once B has a replica, the same COMPOSE is confirmed, and both messages read back.
  await addReplica(t, b);
  t.deepEqual({ ...(await store.enqueue(user, { from: 'alice', body: Buffer.from('on B again') })) }, { ok: true });
  t.is((await store.dequeue(user))?.body.toString(), 'on B');
  t.is((await store.dequeue(user))?.body.toString(), 'on B again');
});

redisOnly('a COMPOSE redirected by MOVED waits for the replicas of the slot\'s new owner', async (t) => {
  const nodes = cluster().nodes;
  const admins = await Promise.all(nodes.map((node) => admin(t, node)));
  const onC = admins[2] as Admin;
  const prefix = uniqueName('moved');
  const { user, slot } = await userServedBy(nodes[2] as RedisProcess, onC, prefix);
  const store = await openStore(t, prefix);
  await t.throwsAsync(store.enqueue(user, { from: 'alice', body: Buffer.from('on C, no replica') }), { code: 'PH_ERR_STORE_NOT_REPLICATED' });
  t.true((await store.dequeue(user)) !== null);

  // The slot is handed to A, which has a replica, while the store's map still names C:
  // C answers MOVED.
  const onA = admins[0] as Admin;
  await addReplica(t, nodes[0] as RedisProcess);
  const toId = await myId(onA);
  await onA.sendCommand(['CLUSTER', 'SETSLOT', String(slot), 'NODE', toId]);
  await onC.sendCommand(['CLUSTER', 'SETSLOT', String(slot), 'NODE', toId]);
  t.teardown(async () => {
    const back = await myId(onC);
    for (const each of admins) await each.sendCommand(['CLUSTER', 'SETSLOT', String(slot), 'NODE', back]).catch(() => {});
  });
  t.deepEqual({ ...(await store.enqueue(user, { from: 'alice', body: Buffer.from('on A') })) }, { ok: true });
  t.is(await keysIn(onA, slot), 1, 'A stored it');
  t.is((await store.dequeue(user))?.body.toString(), 'on A');
});

redisOnly('COMPOSEs and READs issued in one turn reach each node in that order: every READ finds the message composed just before it', async (t) => {
  const store = await openStore(t, uniqueName('order'));
  const users = Array.from({ length: 60 }, (_, i) => `u${i}`);
  // As a shard's batch does: all issued at once, none awaited before the next.
  const results = users.map((user) => ({ stored: store.enqueue(user, { from: 'x', body: Buffer.from(user) }), read: store.dequeue(user) }));
  for (const [i, { stored, read }] of results.entries()) {
    await t.throwsAsync(stored, { code: 'PH_ERR_STORE_NOT_REPLICATED' }, 'no replica here: stored, not confirmed');
    t.is((await read)?.body.toString(), users[i]);
  }
});
