import type { SerializedError } from './errors.js';

/**
 * What the acceptor and a shard say to each other over a MessagePort.
 *
 * Data travels as one binary batch per shard per event-loop turn, its ArrayBuffer
 * transferred rather than cloned: a batch of a thousand commands is one postMessage and
 * no per-command object on either side. Control messages are small objects told apart
 * by `op`.
 *
 * Request batch: a header, then one record per command, back to back.
 *   header      u32 seq (1, 2, 3... per shard) | u32 acked (the highest seq whose reply
 *               the acceptor has received; a durable shard may forget replies up to it)
 *               | u32 flags (FLAG_RESENT: sent again after a crash, may be applied already)
 *   OP_COUNT    u8 op | u16 n | user[n]
 *   OP_COMPOSE  u8 op | u16 n | to[n] | u16 m | from[m] | u32 k | body[k]
 *   OP_READ     u8 op | u16 n | user[n]
 * Reply batch: one record per request, in request order (so no request ids are needed):
 *   u32 n | the reply's exact wire bytes[n]
 *   u32 ABORTED   no answer can be given: the acceptor drops the connection
 */
export const OP_COUNT = 1;
export const OP_COMPOSE = 2;
export const OP_READ = 3;
export type ShardOp = typeof OP_COUNT | typeof OP_COMPOSE | typeof OP_READ;

export const BATCH_HEADER_BYTES = 12;
export const FLAG_RESENT = 1;
export const ABORTED = 0xffff_ffff;

/** Acceptor to shard. */
export type ToShard = Uint8Array | { readonly op: 'close' };

/** Shard to acceptor. */
export type FromShard =
  | Uint8Array
  | { readonly op: 'ready'; readonly threadId: number }
  | { readonly op: 'failed'; readonly error: SerializedError }
  | { readonly op: 'log'; readonly level: 'info' | 'warn' | 'error'; readonly message: string };

/** What a shard task receives from the pool when it starts. */
export interface ShardTaskData {
  readonly shardId: number;
  readonly port: import('node:worker_threads').MessagePort;
  readonly config: ShardConfig;
}

/** Where a shard keeps its mailboxes. */
export type StoreConfig =
  | { readonly kind: 'memory' }
  | {
      readonly kind: 'sqlite';
      /** One file per shard, by shard id. */
      readonly files: readonly string[];
      readonly fsync: boolean;
      readonly epoch: number;
      readonly maxBytes?: number;
    };

/** Everything a shard needs to build its store; plain data, so it can be cloned. */
export interface ShardConfig {
  readonly maxMessagesPerUser: number;
  readonly store: StoreConfig;
}
