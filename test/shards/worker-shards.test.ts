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

test("a failed start's typed cause comes from the port even when the task's rejection overtakes it", async (t) => {
  // The worker's side, played here: its task rejects at once (carrying only a message),
  // and only then does it say why on its port, as a worker whose port message is slower.
  const pool = {
    run: (data: { port: MessagePort }) => {
      setTimeout(() => {
        data.port.postMessage({ op: 'failed', error: serializeError(new StoreError('PH_ERR_STORE_DAMAGED', 'shard-0.db is damaged')) });
        data.port.close();
      }, 50);
      return Promise.reject(new Error('shard-0.db is damaged'));
    },
  } as unknown as Piscina;
  const shard = new WorkerShard({ pool, config: { maxMessagesPerUser: 8, store: { kind: 'memory' } }, sink, logger: silentLogger, rings: false, lost: () => {} }, 0, null, 0, 0);
  const err = await t.throwsAsync(shard.ready, { instanceOf: ShardError, code: 'PH_ERR_SHARD_START_FAILED' });
  t.true(err?.cause instanceof StoreError);
  t.is((err?.cause as StoreError).code, 'PH_ERR_STORE_DAMAGED');
});
