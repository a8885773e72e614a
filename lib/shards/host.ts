import { type MessagePort, threadId } from 'node:worker_threads';
import { serializeError } from '../errors.js';
import type { Logger } from '../logger.js';
import { MemoryStore } from '../store/memory.js';
import { SqliteStore } from '../store/sqlite.js';
import type { MailboxStore } from '../store/store.js';
import { ShardCore } from './core.js';
import type { FromShard, ShardConfig, ToShard } from './messages.js';

export function createStore(config: ShardConfig, shardId: number): MailboxStore {
  const { store, maxMessagesPerUser } = config;
  if (store.kind === 'memory') return new MemoryStore({ maxMessagesPerUser, maxBytes: store.maxBytes });
  const file = store.files[shardId];
  if (file === undefined) throw new Error(`no store file for shard ${shardId}`);
  const { fsync, epoch, maxBytes, dataDir, disk } = store;
  // The data directory's layout made the file; one that vanished since is not recreated.
  return new SqliteStore({ file, maxMessagesPerUser, fsync, epoch, maxBytes, dataDir, disk, create: false, verify: true });
}

export function createShardCore(config: ShardConfig, shardId: number, logger: Logger): ShardCore {
  return new ShardCore(createStore(config, shardId), logger);
}

/**
 * Serves one shard over `port` until the acceptor says close; resolves then. Each
 * request batch is answered by one reply batch whose buffer is transferred, not copied.
 */
export function serveShard(port: MessagePort, shardId: number, config: ShardConfig): Promise<void> {
  const post = (message: FromShard, transfer?: ArrayBuffer[]): void => port.postMessage(message, transfer);
  // The host's logger is a function and cannot cross threads: reports travel on the port.
  const logger: Logger = {
    info: (fields, message) => post({ op: 'log', level: 'info', fields, message }),
    warn: (fields, message) => post({ op: 'log', level: 'warn', fields, message }),
    error: (fields, message) => post({ op: 'log', level: 'error', fields, message }),
  };
  let core: ShardCore;
  try {
    core = createShardCore(config, shardId, logger);
  } catch (err) {
    // Sent as {code, message}: the acceptor rebuilds the typed error as the cause.
    post({ op: 'failed', error: serializeError(err) });
    port.close();
    return Promise.reject(err);
  }
  return new Promise((resolve) => {
    port.on('message', (message: ToShard) => {
      if (message instanceof Uint8Array) {
        const reply = core.handle(message);
        post(reply, [reply.buffer as ArrayBuffer]);
        return;
      }
      if (message.op === 'stats') {
        post({ op: 'stats', stats: core.stats() });
        return;
      }
      if (message.op === 'close') {
        core.close();
        port.close();
        resolve();
      }
    });
    post({ op: 'ready', threadId });
  });
}
