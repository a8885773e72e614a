import { join } from 'node:path';
import { tmpdir } from 'node:os';
import test from 'ava';
import type { MessagePort } from 'node:worker_threads';
import type { Piscina } from 'piscina';
import { ShardError, StoreError, serializeError } from '../../lib/errors.js';
import { silentLogger } from '../../lib/logger.js';
import type { ShardSink } from '../../lib/shards/backend.js';
import { WorkerShard } from '../../lib/shards/worker-shard.js';
import { WorkerShards } from '../../lib/shards/worker-shards.js';

const sink: ShardSink = { onReply: () => {}, onShardDown: () => {} };

test('a shard whose store cannot open fails start() with a typed cause rebuilt from the worker', async (t) => {
  const shards = new WorkerShards(1, silentLogger);
  t.teardown(() => shards.close());
  const missing = join(tmpdir(), `pigeonhole-no-such-dir-${process.pid}`, 'sub', 'shard-0.db');
  const err = await t.throwsAsync(shards.start({ maxMessagesPerUser: 8, store: { kind: 'sqlite', files: [missing], fsync: false, epoch: 1, dataDir: tmpdir(), disk: { dir: tmpdir(), minFreeBytes: 0, reserveBytes: 0 } } }, sink), {
    instanceOf: ShardError,
    code: 'PH_ERR_SHARD_START_FAILED',
  });
  // The worker sent {code, message}; the acceptor made the StoreError again.
  t.true(err?.cause instanceof StoreError);
  t.is((err?.cause as StoreError).code, 'PH_ERR_STORE_OPEN_FAILED');
  t.regex(err?.message ?? '', /shard 0 could not start: cannot open mailbox store/);
});

/**
 * A shard on a pool that plays the worker's side: its task rejects at once with `reason`
 * (a rejected task carries only a message), and `afterwards` runs on the worker's end of
 * the port 50 ms later, as a slower port would deliver it.
 */
function startingShard(reason: string, afterwards: ((port: MessagePort) => void) | null): WorkerShard {
  const pool = {
    run: (data: { port: MessagePort }) => {
      if (afterwards !== null) setTimeout(() => afterwards(data.port), 50);
      return Promise.reject(new Error(reason));
    },
  } as unknown as Piscina;
  return new WorkerShard({ pool, config: { maxMessagesPerUser: 8, store: { kind: 'memory' } }, sink, logger: silentLogger, rings: false, lost: () => {} }, 0, null, 0, 0);
}

test("a failed start's typed cause comes from the port even when the task's rejection overtakes it", async (t) => {
  const shard = startingShard('shard-0.db is damaged', (port) => {
    port.postMessage({ op: 'failed', error: serializeError(new StoreError('PH_ERR_STORE_DAMAGED', 'shard-0.db is damaged')) });
    port.close();
  });
  const err = await t.throwsAsync(shard.ready, { instanceOf: ShardError, code: 'PH_ERR_SHARD_START_FAILED' });
  t.true(err?.cause instanceof StoreError);
  t.is((err?.cause as StoreError).code, 'PH_ERR_STORE_DAMAGED');
});

test('a worker that dies while starting, saying nothing, fails the start with the task\'s reason when its port closes', async (t) => {
  const shard = startingShard('uncaught in worker during start', (port) => port.close());
  const err = await t.throwsAsync(shard.ready, { instanceOf: ShardError, code: 'PH_ERR_SHARD_START_FAILED' });
  t.regex(err?.message ?? '', /could not start: uncaught in worker during start/);
});

test('closing a shard whose start has failed does not wait for a worker that is gone', async (t) => {
  // The task rejects and the port says nothing: close() comes during the wait for it.
  const shard = startingShard('no worker', null);
  await new Promise((resolve) => setTimeout(resolve, 100));
  const closed = await Promise.race([shard.close().then(() => 'closed'), new Promise((resolve) => setTimeout(() => resolve('still waiting'), 5_000))]);
  t.is(closed, 'closed');
  await t.throwsAsync(shard.ready, { instanceOf: ShardError });
});

test('replies a dying worker posted on its port are taken even when the task\'s rejection overtakes them', async (t) => {
  const events: string[] = [];
  let die = (): void => {};
  const pool = {
    run: (data: { port: MessagePort }) =>
      new Promise((_resolve, reject) => {
        data.port.postMessage({ op: 'ready', threadId: 99, tid: null });
        // The worker's last reply is on its way when the task rejects; the port closes later.
        die = () => {
          data.port.postMessage(Buffer.alloc(40, 7));
          reject(new Error('worker died'));
          setTimeout(() => data.port.close(), 50);
        };
      }),
  } as unknown as Piscina;
  const recording: ShardSink = { onReply: (_shardId, batch) => void events.push(`reply ${batch[0]}`), onShardDown: () => {} };
  const shard = new WorkerShard(
    { pool, config: { maxMessagesPerUser: 8, store: { kind: 'memory' } }, sink: recording, logger: silentLogger, rings: false, lost: (_shard, error) => void events.push(`lost ${error.code}`) },
    0,
    null,
    0,
    0,
  );
  await shard.ready;
  die();
  const deadline = Date.now() + 5_000;
  while (events.length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  t.deepEqual(events, ['reply 7', 'lost PH_ERR_SHARD_CRASHED']);
});
