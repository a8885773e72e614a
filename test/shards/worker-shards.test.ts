import { join } from 'node:path';
import { tmpdir } from 'node:os';
import test from 'ava';
import { ShardError, StoreError } from '../../lib/errors.js';
import { silentLogger } from '../../lib/logger.js';
import type { ShardSink } from '../../lib/shards/backend.js';
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
