import { threadId, type MessagePort } from 'node:worker_threads';
import { serializeError } from './errors.js';
import type { FromShard, ShardConfig, ToShard } from './shard-messages.js';
import { ShardCore } from './shard-core.js';
import { MemoryStore } from './store/memory.js';

export function createShardCore(config: ShardConfig): ShardCore {
  return new ShardCore(new MemoryStore({ maxMessagesPerUser: config.maxMessagesPerUser }));
}

/**
 * Serves one shard over `port` until the acceptor says close; resolves then. Each
 * request batch is answered by one reply batch whose buffer is transferred, not copied.
 */
export function serveShard(port: MessagePort, config: ShardConfig): Promise<void> {
  const post = (message: FromShard, transfer?: ArrayBuffer[]): void => port.postMessage(message, transfer);
  let core: ShardCore;
  try {
    core = createShardCore(config);
  } catch (err) {
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
      if (message.op === 'close') {
        core.close();
        port.close();
        resolve();
      }
    });
    post({ op: 'ready', threadId });
  });
}
