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
  readonly #config: ShardConfig;
  #core: ShardCore | null = null;
  #events: ShardEvents | null = null;

  constructor(config: ShardConfig) {
    this.#config = config;
  }

  async start(events: ShardEvents): Promise<void> {
    this.#events = events;
    this.#core = createShardCore(this.#config);
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
