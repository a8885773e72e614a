import { ShardError, errorMessage } from '../errors.js';
import { type Logger, withFields } from '../logger.js';
import type { ShardBackend, ShardInfo, ShardSink } from './backend.js';
import { BatchRunner, openShardCore } from './host.js';
import { MAIN_LINK, type ShardConfig } from './messages.js';
import type { StoreStats } from '../store/store.js';

/**
 * `shards: 0`: one shard running the very same shard core in the acceptor's thread. The
 * baseline the worker design is measured against, and handy in tests.
 */
export class InlineShards implements ShardBackend {
  readonly size = 1;
  // Answered within send(): there is never one in flight.
  readonly batchesInFlight = 1;
  readonly #logger: Logger;
  #runner: BatchRunner | null = null;
  #deliver: ((reply: Buffer) => void) | null = null;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  async start(config: ShardConfig, sink: ShardSink): Promise<void> {
    try {
      const core = await openShardCore(config, 0, withFields(this.#logger, { shard: 0 }));
      this.#runner = new BatchRunner(core);
      this.#deliver = (reply) => sink.onReply(0, reply);
    } catch (err) {
      throw new ShardError('PH_ERR_SHARD_START_FAILED', `shard 0 could not start: ${errorMessage(err)}`, { cause: err });
    }
  }

  get readsInPlace(): boolean {
    return this.#runner?.synchronous ?? false;
  }

  send(_shardId: number, batch: Buffer): void {
    const runner = this.#runner;
    if (runner === null || this.#deliver === null) throw new Error('inline shard used before start() or after close()');
    runner.run(batch, MAIN_LINK, this.#deliver);
  }

  async close(): Promise<void> {
    // The runner stays until every batch given to it has been answered.
    await this.#runner?.close();
    this.#runner = null;
  }

  describe(): ShardInfo[] {
    return [{ shardId: 0, threadId: null, tid: null, restarts: 0, ready: this.#runner !== null }];
  }

  async stats(): Promise<(StoreStats | null)[]> {
    return [this.#runner?.stats() ?? null];
  }
}
