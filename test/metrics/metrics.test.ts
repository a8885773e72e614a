// The server's metrics: counters that move with real traffic, the per-shard store
// gauges asked of the shards, the HTTP endpoint with /healthz following shard restarts.
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { Counter, Registry } from 'prom-client';
import { serveMetrics } from '../../lib/metrics/http.js';
import { createServer, kShardBackend } from '../../lib/server.js';
import { silentLogger } from '../../lib/logger.js';
import type { WorkerShards } from '../../lib/shards/worker-shards.js';
import { compose, until } from '../helpers/line-client.js';
import { HOST, forEachShards, nameOnShard, startServer } from '../helpers/server.js';

/** Every sample of a Prometheus text exposition, by its full name with labels. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

async function scrape(server: { metrics: Registry }): Promise<Map<string, number>> {
  return samples(await server.metrics.metrics());
}

forEachShards(test, 'counters move with traffic: commands, replies, bytes, connections, batches, stored messages', async (t, shards) => {
  const { server, connect } = await startServer(t, { shards });
  const empty = await scrape(server);
  t.is(empty.get('pigeonhole_commands_total{command="login"}'), 0);

  // Users on each shard, so both shards' gauges move.
  const alice = nameOnShard('alice', 0, Math.max(shards, 1));
  const bob = nameOnShard('bob', shards === 0 ? 0 : 1, Math.max(shards, 1));
  const sender = await connect();
  const toSend = Buffer.concat([Buffer.from(`LOGIN ${alice}\n`), compose(bob, 'one'), compose(bob, 'two'), compose(alice, 'three'), Buffer.from('READ\n')]);
  await sender.send(toSend);
  t.deepEqual(await sender.lines(6), ['0', 'MESSAGE SENT', 'MESSAGE SENT', 'MESSAGE SENT', alice, 'three']);
  await sender.send('READ\nEXIT\n');
  t.deepEqual(await sender.lines(1), ['READ ERROR']);
  await sender.waitClosed();
  const dropped = await connect();
  await dropped.send('HELLO\n');
  await dropped.waitClosed();

  const after = await scrape(server);
  const expected: [string, number][] = [
    ['pigeonhole_commands_total{command="login"}', 1],
    ['pigeonhole_commands_total{command="compose"}', 3],
    ['pigeonhole_commands_total{command="read"}', 2],
    ['pigeonhole_commands_total{command="exit"}', 1],
    ['pigeonhole_replies_total{kind="login_count"}', 1],
    ['pigeonhole_replies_total{kind="message_sent"}', 3],
    ['pigeonhole_replies_total{kind="message_failed"}', 0],
    ['pigeonhole_replies_total{kind="read_message"}', 1],
    ['pigeonhole_replies_total{kind="read_error"}', 1],
    ['pigeonhole_protocol_errors_total{code="PH_ERR_PROTOCOL_UNKNOWN_COMMAND"}', 1],
    ['pigeonhole_connections_accepted_total', 2],
    ['pigeonhole_received_bytes_total', toSend.length + 'READ\nEXIT\n'.length + 'HELLO\n'.length],
    ['pigeonhole_sent_bytes_total', sender.bytesReceived],
    // The shards' own count: bob holds two, alice's one was read.
    [`pigeonhole_stored_messages{shard="${shards === 0 ? 0 : 1}"}`, 2],
    [`pigeonhole_shard_up{shard="0"}`, 1],
    [`pigeonhole_shard_restarts_total{shard="0"}`, 0],
    ['pigeonhole_shard_stalls_total', 0],
  ];
  for (const [name, value] of expected) t.is(after.get(name), value, name);
  if (shards === 2) t.is(after.get('pigeonhole_stored_messages{shard="0"}'), 0);
  t.true((after.get(`pigeonhole_store_bytes{shard="${shards === 0 ? 0 : 1}"}`) ?? 0) >= 'one'.length + 'two'.length + 2 * alice.length);
  await until(async () => (await scrape(server)).get('pigeonhole_connections_open') === 0, 'both connections are closed');

  // Every command that went to a shard is in exactly one batch.
  let batched = 0;
  for (const [name, value] of after) if (name.startsWith('pigeonhole_shard_batch_commands_sum')) batched += value;
  t.is(batched, 1 + 3 + 2);
  let roundTrips = 0;
  for (const [name, value] of after) if (name.startsWith('pigeonhole_shard_round_trip_seconds_count')) roundTrips += value;
  t.true(roundTrips >= 1);

  // Node's process and event-loop metrics are there, with the same prefix as every other.
  t.true(after.has('pigeonhole_process_cpu_user_seconds_total'));
  t.true(after.has('pigeonhole_nodejs_eventloop_lag_seconds'));
  for (const name of after.keys()) t.true(name.startsWith('pigeonhole_'), name);
});

test('a durable store reports its messages and its database size', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pigeonhole-metrics-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const { server, connect } = await startServer(t, { dataDir: dir });
  const client = await connect();
  await client.send(Buffer.concat([Buffer.from('LOGIN carol\n'), compose('dave', 'x'.repeat(10_000))]));
  t.deepEqual(await client.lines(2), ['0', 'MESSAGE SENT']);
  const stats = await scrape(server);
  t.is(stats.get('pigeonhole_stored_messages{shard="0"}'), 1);
  t.true((stats.get('pigeonhole_store_bytes{shard="0"}') ?? 0) >= 10_000);
});

test('the registry merges into a host application registry', async (t) => {
  const { server } = await startServer(t);
  const host = new Registry();
  new Counter({ name: 'host_requests_total', help: 'the host application counts its own', registers: [host] });
  const merged = Registry.merge([host, server.metrics]);
  const text = await merged.metrics();
  t.regex(text, /^host_requests_total 0$/m);
  t.regex(text, /^pigeonhole_connections_open 0$/m);
});

function get(port: number, path: string, method = 'GET'): Promise<{ status: number; body: string; type: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: HOST, port, path, method, timeout: 20_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: String(res.headers['content-type']) }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

test('/metrics and /healthz over HTTP; /healthz is 503 before start and while a shard restarts', async (t) => {
  const server = createServer({ shards: 2, logger: silentLogger });
  t.teardown(() => server.close());
  const endpoint = await serveMetrics(server, { host: HOST, port: 0 });
  t.teardown(() => endpoint.close());
  const { port } = endpoint.address;

  t.deepEqual(await get(port, '/healthz'), { status: 503, body: 'not started\n', type: 'text/plain; charset=utf-8' });
  await server.listen({ host: HOST, port: 0 });
  t.is((await get(port, '/healthz')).status, 200);
  const metrics = await get(port, '/metrics');
  t.is(metrics.status, 200);
  t.regex(metrics.type, /^text\/plain; version=0\.0\.4/);
  t.regex(metrics.body, /^pigeonhole_shard_up\{shard="1"\} 1$/m);

  // A shard's worker dies: until its replacement is ready, the server is not healthy.
  const backend = server[kShardBackend] as WorkerShards;
  await backend.terminate(1);
  let seen = '';
  await until(async () => {
    const health = await get(port, '/healthz');
    seen = health.body;
    return health.status === 503;
  }, 'healthz reports the lost shard');
  t.is(seen, 'shard 1 not ready\n');
  await until(async () => (await get(port, '/healthz')).status === 200, 'the shard is back');
  const again = samples((await get(port, '/metrics')).body);
  t.is(again.get('pigeonhole_shard_restarts_total{shard="1"}'), 1);
  t.is(again.get('pigeonhole_shard_up{shard="1"}'), 1);

  t.is((await get(port, '/nowhere')).status, 404);
  t.is((await get(port, '/metrics', 'POST')).status, 405);
  t.is((await get(port, '/healthz', 'HEAD')).body, '');
  await server.close();
  t.deepEqual((await get(port, '/healthz')).status, 503);
});
