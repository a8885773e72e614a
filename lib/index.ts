export { createServer, PigeonholeServer, DEFAULT_HOST, DEFAULT_PORT, type AcceptorInfo, type ListenOptions } from './server.js';
export {
  type ServerOptions,
  type RedisOptions,
  type ShardTransport,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_IN_FLIGHT,
  DEFAULT_MAX_LINE_BYTES,
  DEFAULT_MAX_MESSAGES_PER_USER,
  DEFAULT_MAX_CONNECTIONS_PER_IP,
  DEFAULT_MAX_CONNECTION_RATE_PER_IP,
  DEFAULT_LINE_TIMEOUT_MS,
  DEFAULT_MAX_LINE_BUFFER_BYTES,
  DEFAULT_MAX_REPLY_BUFFER_BYTES,
  defaultMaxConnections,
  defaultShardCount,
} from './options.js';
export type { LimitCounts } from './session/connection-guard.js';
export type { ShardInfo } from './shards/backend.js';
export { type LineLogger, type LogFields, type Logger, consoleLogger, lineLogger, silentLogger } from './logger.js';
export { type Health, type MetricsEndpoint, type MetricsTarget, serveMetrics } from './metrics/http.js';
export type { ServerTlsOptions } from './tls/server-tls.js';
export type { ClientTlsOptions } from './tls/client-tls.js';
export {
  ERROR_CODES,
  type ErrorCode,
  PigeonholeError,
  ProtocolError,
  InvalidOptionError,
  ShardError,
  AcceptorError,
  ServerStateError,
  StoreError,
  LimitError,
  TlsError,
  ClientError,
  ClientClosedError,
} from './errors.js';
export { MAX_USERNAME_BYTES, usernameProblem } from './protocol/username.js';
export { connect, type Client, type ClientStatus, type ConnectOptions, type ReadResult } from './client/index.js';
