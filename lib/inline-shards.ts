import { ShardError } from './errors.js';
import type { Logger } from './logger.js';
import type { ShardBackend, ShardEvents, ShardInfo } from './shard-backend.js';
import type { ShardConfig } from './shard-messages.js';
import type { ShardCore } from './shard-core.js';
import { createShardCore } from './shard-host.js';

/**
 * `shards: 0`: one shard running the very same ShardCore in the acceptor's thread. The
 * baseline the worker design is measured against, and handy in tests.
 */
export class InlineShards implements ShardBackend {
  readonly size = 1;
  readonly #logger: Logger;
  #core: ShardCore | null = null;
  #events: ShardEvents | null = null;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  async start(config: ShardConfig, events: ShardEvents): Promise<void> {
    this.#events = events;
    try {
      this.#core = createShardCore(config, 0, this.#logger);
    } catch (err) {
      throw new ShardError('PH_ERR_SHARD_START_FAILED', `shard 0 could not start: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  send(shardId: number, batch: Buffer): void {
    const core = this.#core;
    const events = this.#events;
    if (core === null || events === null) throw new Error('inline shard used before start()');
    events.reply(shardId, core.handle(batch));
  }

  async close(): Promise<void> {
    this.#core?.close();
    this.#core = null;
  }

  describe(): ShardInfo[] {
    return [{ shardId: 0, threadId: null, restarts: 0 }];
  }
}
