import { DEFAULT_LINE_TIMEOUT_MS, DEFAULT_MAX_CONNECTIONS_PER_IP, DEFAULT_MAX_CONNECTION_RATE_PER_IP, DEFAULT_MAX_LINE_BUFFER_BYTES, DEFAULT_MAX_REPLY_BUFFER_BYTES, OPTION_RANGES, type ServerOptions, defaultMaxConnections } from '../options.js';
import { UsageError, bytesFlag, integerFlag, secondsFlag } from './flags.js';

/** `pigeonhole serve`'s flags for the limits on what clients and the store may hold. */
export const LIMIT_FLAGS = {
  'max-connections': { type: 'string' },
  'max-connections-per-ip': { type: 'string' },
  'max-connection-rate-per-ip': { type: 'string' },
  'line-timeout': { type: 'string' },
  'max-line-buffer': { type: 'string' },
  'max-reply-buffer': { type: 'string' },
  'max-store-bytes': { type: 'string' },
  'min-free-disk': { type: 'string' },
} as const;

const MiB = 1024 * 1024;

export const LIMITS_HELP = `  --max-connections N    connections open at once; more are closed unanswered
                         (default ${defaultMaxConnections()} here: ulimit -n less max(128, a tenth))
  --max-connections-per-ip N
                         connections open at once from one address; 0 for no such
                         limit (default ${DEFAULT_MAX_CONNECTIONS_PER_IP})
  --max-connection-rate-per-ip N
                         new connections one address may open per second; more are
                         closed unanswered, before any TLS handshake; 0 for no such
                         limit (default ${DEFAULT_MAX_CONNECTION_RATE_PER_IP})
  --line-timeout SECONDS a command or message line must be complete this long after
                         its first byte, or the connection is closed; 0 never
                         (default ${DEFAULT_LINE_TIMEOUT_MS / 1000})
  --max-line-buffer BYTES
                         unfinished lines held across all connections; past it the
                         connections holding the most are closed (default ${DEFAULT_MAX_LINE_BUFFER_BYTES / MiB}M)
  --max-reply-buffer BYTES
                         replies written and not yet taken by their clients, across
                         all connections; past it the connections holding the most
                         are closed (default ${DEFAULT_MAX_REPLY_BUFFER_BYTES / MiB}M, or twice what one
                         connection may hold per acceptor thread if more)
  --max-store-bytes BYTES
                         the most the stored messages may take, split between the
                         shards; past it COMPOSE fails (default: a quarter of memory
                         with --memory, no cap on disk)
  --min-free-disk BYTES  on disk: COMPOSE fails while the data directory's disk has
                         less free; READs go on; 0 for no such check (default: a
                         twentieth of the disk, 1M to 64M)
`;

type LimitValues = Partial<Record<keyof typeof LIMIT_FLAGS, string>>;

/** Where the mailboxes are kept, as the other flags say. */
export type Storage = 'disk' | 'memory' | 'redis';

/**
 * The server options the limit flags ask for (undefined where a flag is not given). Each
 * takes its option's range (OPTION_RANGES), as resolveOptions() checks it.
 */
export function limitOptions(values: LimitValues, storage: Storage): Partial<ServerOptions> {
  const lineTimeoutMs = secondsFlag('line-timeout', values['line-timeout'], ...OPTION_RANGES.lineTimeoutMs);
  if (storage !== 'disk' && values['min-free-disk'] !== undefined) {
    throw new UsageError(
      storage === 'memory'
        ? '--min-free-disk applies to on-disk storage; drop --memory'
        : '--min-free-disk applies to on-disk storage, not to mailboxes kept in Redis; drop it (Redis has its own maxmemory)',
    );
  }
  if (storage === 'redis' && values['max-store-bytes'] !== undefined) {
    throw new UsageError('--max-store-bytes caps the memory and on-disk stores, not Redis; drop it and set maxmemory in Redis');
  }
  return {
    maxConnections: integerFlag('max-connections', values['max-connections'], ...OPTION_RANGES.maxConnections),
    maxConnectionsPerIp: integerFlag('max-connections-per-ip', values['max-connections-per-ip'], ...OPTION_RANGES.maxConnectionsPerIp),
    maxConnectionRatePerIp: integerFlag('max-connection-rate-per-ip', values['max-connection-rate-per-ip'], ...OPTION_RANGES.maxConnectionRatePerIp),
    lineTimeoutMs,
    maxLineBufferBytes: bytesFlag('max-line-buffer', values['max-line-buffer'], ...OPTION_RANGES.maxLineBufferBytes),
    maxReplyBufferBytes: bytesFlag('max-reply-buffer', values['max-reply-buffer'], ...OPTION_RANGES.maxReplyBufferBytes),
    maxStoreBytes: bytesFlag('max-store-bytes', values['max-store-bytes'], ...OPTION_RANGES.maxStoreBytes),
    minFreeDiskBytes: bytesFlag('min-free-disk', values['min-free-disk'], ...OPTION_RANGES.minFreeDiskBytes),
  };
}
