// Several pigeonhole nodes over one real 3-master Redis Cluster: each node a
// `pigeonhole serve --redis-cluster ...` process, as an operator would run them behind a
// load balancer. The cluster keeps an append-only file synced on every write, so a
// master that crashes comes back with everything it acknowledged.
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { compose, LineClient, readReplies } from '../helpers/line-client.js';
import { redisTest, useRedisCluster } from '../helpers/redis.js';
import { type ServeProcess, serveProcess } from '../helpers/serve-process.js';
import { uniqueName } from '../helpers/server.js';
import { checkDelivery, drain, flood } from './flood.js';

const cluster = useRedisCluster({ persist: true });
const redisOnly = redisTest();

// Room for a whole flood in one mailbox: a MESSAGE FAILED here means Redis, not a full box.
const nodeArgs = (): string[] => ['--redis-cluster', cluster().addresses.join(','), '--shards', '1', '--max-messages', '1000000'];

// Two nodes for the whole file, started on first use.
let nodes: Promise<[ServeProcess, ServeProcess]> | null = null;
const twoNodes = (): Promise<[ServeProcess, ServeProcess]> => (nodes ??= Promise.all([serveProcess(null, nodeArgs()), serveProcess(null, nodeArgs())]));
test.after.always(async () => {
  const started = await nodes?.catch(() => null);
  await Promise.all((started ?? []).map((node) => node.kill()));
});

async function login(port: number, user: string): Promise<{ client: LineClient; count: number }> {
  const client = await LineClient.connect(port);
  await client.send(`LOGIN ${user}\n`);
  return { client, count: Number((await client.readLine()).toString()) };
}

/** COMPOSEs until MESSAGE SENT, on a new connection after a drop; false after 10 s of trying. */
async function composeUntilSent(port: number, to: string, body: string): Promise<boolean> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const sender = await login(port, uniqueName('probe')).catch(() => null);
    try {
      await sender?.client.send(compose(to, body));
      const [reply] = (await sender?.client.lines(1).catch(() => [])) ?? [];
      if (reply === 'MESSAGE SENT') return true;
    } finally {
      sender?.client.destroy();
    }
    await sleep(100);
  }
  return false;
}

redisOnly('a message composed on one node is read on the other', async (t) => {
  const [a, b] = await twoNodes();
  const bob = uniqueName('bob');
  const alice = uniqueName('alice');
  const sender = await login(a.port, bob);
  t.teardown(() => sender.client.destroy());
  await sender.client.send(compose(alice, 'hello from node A'));
  t.deepEqual(await sender.client.lines(1), ['MESSAGE SENT']);

  const reader = await login(b.port, alice);
  t.teardown(() => reader.client.destroy());
  t.is(reader.count, 1, 'node B counts it');
  await reader.client.send('READ\nREAD\n');
  t.deepEqual(await reader.client.lines(3), [bob, 'hello from node A', 'READ ERROR']);
});

redisOnly('two connections of one user on two nodes hand out each message exactly once', async (t) => {
  const [a, b] = await twoNodes();
  const carol = uniqueName('carol');
  const filler = await login(a.port, uniqueName('filler'));
  t.teardown(() => filler.client.destroy());
  const total = 300;
  await filler.client.send(Buffer.concat(Array.from({ length: total }, (_, i) => compose(carol, `m${i}`))));
  t.true((await filler.client.lines(total)).every((reply) => reply === 'MESSAGE SENT'));

  const onA = await login(a.port, carol);
  const onB = await login(b.port, carol);
  t.teardown(() => (onA.client.destroy(), onB.client.destroy()));
  t.is(onA.count, total);
  // Both read at once, pipelined, more READs than messages between them.
  const reads = async (client: LineClient): Promise<string[]> => {
    await client.send('READ\n'.repeat(total));
    return (await readReplies(client, total)).flatMap((reply) => (reply === null ? [] : [reply.body]));
  };
  const [fromA, fromB] = await Promise.all([reads(onA.client), reads(onB.client)]);
  const got = [...fromA, ...fromB];
  t.is(got.length, total, 'every message handed out');
  t.is(new Set(got).size, total, 'none twice');
  t.true(fromA.length > 0 && fromB.length > 0);
});

redisOnly('per-sender FIFO holds across nodes: two senders on two nodes, one mailbox, read from both', async (t) => {
  const [a, b] = await twoNodes();
  const dave = uniqueName('dave');
  const senders = [await login(a.port, uniqueName('sa')), await login(b.port, uniqueName('sb'))];
  t.teardown(() => senders.forEach((sender) => sender.client.destroy()));
  const perSender = 200;
  await Promise.all(
    senders.map(async ({ client }, s) => {
      // In pipelined chunks, so the two senders' writes interleave in the mailbox.
      for (let i = 0; i < perSender; i += 20) {
        await client.send(Buffer.concat(Array.from({ length: 20 }, (_, k) => compose(dave, `${s}:${i + k}`))));
        t.true((await client.lines(20)).every((reply) => reply === 'MESSAGE SENT'));
      }
    }),
  );
  const readers = [await login(a.port, dave), await login(b.port, dave)];
  t.teardown(() => readers.forEach((reader) => reader.client.destroy()));
  const order: string[][] = [[], []];
  // Alternate the node each READ goes to.
  for (let i = 0; i < perSender * 2; i++) {
    const { client } = readers[i % 2] as { client: LineClient };
    await client.send('READ\n');
    await client.lines(1); // the sender's name
    const [body] = await client.lines(1);
    const [s, seq] = (body as string).split(':');
    order[Number(s)]?.push(seq as string);
  }
  for (const s of [0, 1]) t.deepEqual(order[s], Array.from({ length: perSender }, (_, i) => String(i)), `sender ${s} in order`);
});

redisOnly('kill -9 a node mid-flood: through another node every MESSAGE SENT is there exactly once', async (t) => {
  const [, b] = await twoNodes();
  const victim = await serveProcess(t, nodeArgs());
  const recipients = Array.from({ length: 12 }, () => uniqueName('r'));
  const killed = sleep(1_500).then(() => victim.kill());
  const flooded = await flood({ port: victim.port, senders: 8, recipients, pipeline: 32, perSender: 100_000, stop: killed });
  await killed;
  t.true(flooded.acked.size > 100, `the flood got going before the kill (${flooded.acked.size} acknowledged)`);
  const delivered = await drain(b.port, recipients);
  t.deepEqual(checkDelivery(delivered, flooded, recipients), []);
  const all = new Set([...delivered.values()].flat().map((message) => message.body));
  t.deepEqual([...flooded.failed].filter((body) => all.has(body)), [], 'no MESSAGE FAILED was stored');
});

redisOnly('a Redis master crashed mid-flood and restarted: MESSAGE FAILED or dropped while down, no wrong answer, service back without restarting the nodes', async (t) => {
  const [a, b] = await twoNodes();
  const recipients = Array.from({ length: 12 }, () => uniqueName('q'));
  const master = cluster().nodes[0];
  if (master === undefined) throw new Error('no master');
  // Crash a master 0.8 s in, bring it back 1 s later (within the cluster's node timeout),
  // then keep flooding 1.5 s more.
  const outage = (async () => {
    await sleep(800);
    await master.crash();
    await sleep(1_000);
    await master.restart();
    await sleep(1_500);
  })();
  const flooded = await flood({ port: [a.port, b.port], senders: 8, recipients, pipeline: 16, perSender: 100_000, stop: outage, reconnect: true });
  await outage;
  t.true(flooded.failed.size + flooded.dropped > 0, 'the outage was felt');

  // Service is back on both nodes, for every recipient (every master), without a restart.
  for (const port of [a.port, b.port]) {
    for (const user of recipients) t.true(await composeUntilSent(port, user, `probe:${port}`), `${user} through ${port}`);
  }
  const delivered = await drain(a.port, recipients);
  const fromFlood = new Map([...delivered].map(([user, messages]) => [user, messages.filter((message) => !message.body.startsWith('probe:'))]));
  t.deepEqual(checkDelivery(fromFlood, flooded, recipients), []);
  const all = new Set([...fromFlood.values()].flat().map((message) => message.body));
  t.deepEqual([...flooded.failed].filter((body) => all.has(body)), [], 'no MESSAGE FAILED was stored');
  t.true(/lost the connection to Redis/.test(a.stderr() + b.stderr()), 'the nodes logged the loss');
  t.true(/is back after/.test(a.stderr() + b.stderr()), 'and the return');
});
