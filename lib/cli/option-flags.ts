import { InvalidOptionError } from '../errors.js';
import { UsageError } from './flags.js';

// The createServer() option each serve flag sets. Options the flags only reach through
// another check (TLS files, the metrics address) are not here: their flags check them.
const FLAG_OF_OPTION: Readonly<Record<string, string>> = {
  shards: 'shards',
  acceptors: 'acceptors',
  maxMessagesPerUser: 'max-messages',
  maxLineBytes: 'max-line',
  idleTimeoutMs: 'idle-timeout',
  maxInFlight: 'max-in-flight',
  dataDir: 'data-dir',
  maxConnections: 'max-connections',
  maxConnectionsPerIp: 'max-connections-per-ip',
  maxConnectionRatePerIp: 'max-connection-rate-per-ip',
  lineTimeoutMs: 'line-timeout',
  maxLineBufferBytes: 'max-line-buffer',
  maxReplyBufferBytes: 'max-reply-buffer',
  maxStoreBytes: 'max-store-bytes',
  minFreeDiskBytes: 'min-free-disk',
  'redis.url': 'redis',
  'redis.cluster': 'redis-cluster',
  'redis.waitReplicas': 'redis-wait',
  'redis.waitTimeoutMs': 'redis-wait-timeout',
};

const OPTION_NAME = new RegExp(`(?<![\\w.])(${Object.keys(FLAG_OF_OPTION).map((name) => name.replace('.', '\\.')).join('|')})(?![\\w])`, 'g');

/**
 * createServer()'s refusal of a value that passed its flag's own check (one that only
 * fails beside another, as --max-line-buffer against --max-line), as a usage error that
 * names the flags: a serve user never wrote `maxLineBufferBytes`.
 */
export function inFlagTerms(err: unknown): unknown {
  if (!(err instanceof InvalidOptionError)) return err;
  const flags = [...new Set([...err.message.matchAll(OPTION_NAME)].map((match) => `--${FLAG_OF_OPTION[match[1] as string]}`))];
  return new UsageError(flags.length === 0 ? err.message : `${err.message} (${flags.join(', ')})`);
}
