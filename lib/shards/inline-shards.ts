import { ShardError, errorMessage } from '../errors.js';
import { type Logger, withFields } from '../logger.js';
import type { ShardBackend, ShardInfo, ShardSink } from './backend.js';
import type { ShardCore } from './core.js';
import { createShardCore } from './host.js';
import type { ShardConfig } from './messages.js';
import type { StoreStats } from '../store/store.js';

/**
 * `shards: 0`: one shard running the very same ShardCore in the acceptor's thread. The
 * baseline the worker design is measured against, and handy in tests.
 */
export class InlineShards implements ShardBackend {
  readonly size = 1;
  readonly #logger: Logger;
  #core: ShardCore | null = null;
  #sink: ShardSink | null = null;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  async start(config: ShardConfig, sink: ShardSink): Promise<void> {
    this.#sink = sink;
    try {
      this.#core = createShardCore(config, 0, withFields(this.#logger, { shard: 0 }));
    } catch (err) {
      throw new ShardError('PH_ERR_SHARD_START_FAILED', `shard 0 could not start: ${errorMessage(err)}`, { cause: err });
    }
  }

  send(shardId: number, batch: Buffer): void {
    const core = this.#core;
    const sink = this.#sink;
    if (core === null || sink === null) throw new Error('inline shard used before start()');
    sink.onReply(shardId, core.handle(batch));
  }

  async close(): Promise<void> {
    this.#core?.close();
    this.#core = null;
  }

  describe(): ShardInfo[] {
    return [{ shardId: 0, threadId: null, restarts: 0, ready: this.#core !== null }];
  }

  async stats(): Promise<(StoreStats | null)[]> {
    return [this.#core?.stats() ?? null];
  }
}
