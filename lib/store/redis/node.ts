import { type RedisArgument, RESP_TYPES } from '@redis/client';

// Bulk strings come back as Buffers, never decoded: a message's bytes are not text.
export const BUFFERS = { [RESP_TYPES.BLOB_STRING]: Buffer } as const;

/** One connection to one Redis node, as node-redis gives it. */
export interface RedisNode {
  sendCommand<T>(args: readonly RedisArgument[], options?: { readonly typeMapping?: typeof BUFFERS; readonly timeout?: number; readonly chainId?: symbol }): Promise<T>;
}
