export { createServer, PigeonholeServer, DEFAULT_HOST, DEFAULT_PORT, type ListenOptions } from './server.js';
export {
  type ServerOptions,
  type RedisOptions,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_IN_FLIGHT,
  DEFAULT_MAX_LINE_BYTES,
  DEFAULT_MAX_MESSAGES_PER_USER,
  defaultShardCount,
} from './options.js';
export type { ShardInfo } from './shards/backend.js';
export { type LogFields, type Logger, consoleLogger, silentLogger } from './logger.js';
export {
  ERROR_CODES,
  type ErrorCode,
  PigeonholeError,
  ProtocolError,
  InvalidOptionError,
  ShardError,
  ServerStateError,
  StoreError,
  ClientError,
  ClientClosedError,
} from './errors.js';
export { MAX_USERNAME_BYTES, usernameProblem } from './protocol/username.js';
export { connect, type Client, type ClientStatus, type ConnectOptions, type ReadResult } from './client/index.js';
