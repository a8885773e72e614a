import type { ShardBackend } from '../../lib/shards/backend.js';

/** One shard, in the test's own thread, that does what `send` (and `close`, if given) say, and nothing else. */
export function fakeBackend(parts: Pick<ShardBackend, 'send'> & Partial<Pick<ShardBackend, 'close'>>): ShardBackend {
  return { size: 1, batchesInFlight: 1, start: async () => {}, close: async () => {}, describe: () => [], stats: async () => [], ...parts };
}
