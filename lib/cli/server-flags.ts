import type { ConnectOptions } from '../client/index.js';
import { DEFAULT_HOST, DEFAULT_MAX_LINE_BYTES, DEFAULT_PORT, MAX_MAX_LINE_BYTES, MIN_MAX_LINE_BYTES } from '../protocol/defaults.js';
import type { ClientTlsOptions } from '../tls/client-tls.js';
import { readTlsFileSync } from '../tls/files.js';
import { UsageError, bytesFlag, integerFlag } from './flags.js';

/** The flags every client command shares: where the server is, how to reach it, and its line limit. */
export const SERVER_FLAGS = {
  host: { type: 'string' },
  port: { type: 'string' },
  tls: { type: 'boolean' },
  'tls-ca': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'max-line': { type: 'string' },
} as const;

export const SERVER_FLAGS_HELP = `  --host HOST      server address (default ${DEFAULT_HOST})
  --port N         server port (default ${DEFAULT_PORT})
  --tls            connect over TLS, verifying the server against Node's public CAs
  --tls-ca FILE    connect over TLS, verifying the server against this CA (PEM)
  --tls-cert FILE  this client's certificate (PEM), for a server that requires one:
                   LOGIN must then be the certificate's name; needs --tls-key
  --tls-key FILE   the certificate's private key (PEM)
  --max-line BYTES the server's line limit (default ${DEFAULT_MAX_LINE_BYTES}; K, M or G for
                   KiB, MiB, GiB): a longer message is refused before sending, and a
                   longer reply line ends the connection. Match the server's --max-line`;

export interface ServerFlagValues {
  host?: string;
  port?: string;
  tls?: boolean;
  'tls-ca'?: string;
  'tls-cert'?: string;
  'tls-key'?: string;
  'max-line'?: string;
}

/** The server's line limit, from --max-line. */
export function maxLineFlag(values: ServerFlagValues): number {
  return bytesFlag('max-line', values['max-line'], MIN_MAX_LINE_BYTES, MAX_MAX_LINE_BYTES) ?? DEFAULT_MAX_LINE_BYTES;
}

/**
 * Where to connect and how, from the shared flags. Any --tls-* flag means TLS; files are
 * read here, so an unreadable one fails before anything is sent.
 */
export function serverAddress(values: ServerFlagValues): Required<Pick<ConnectOptions, 'host' | 'port' | 'maxLineBytes'>> & Pick<ConnectOptions, 'tls'> {
  const host = values.host ?? DEFAULT_HOST;
  if (host.length === 0) throw new UsageError('--host cannot be empty');
  const port = integerFlag('port', values.port, 1, 65_535) ?? DEFAULT_PORT;
  const caFile = values['tls-ca'];
  const certFile = values['tls-cert'];
  const keyFile = values['tls-key'];
  const maxLineBytes = maxLineFlag(values);
  if ((certFile === undefined) !== (keyFile === undefined)) throw new UsageError('--tls-cert and --tls-key go together: give both');
  if (values.tls !== true && caFile === undefined && certFile === undefined) return { host, port, maxLineBytes };
  const tls: ClientTlsOptions = {};
  if (caFile !== undefined) tls.ca = readTlsFileSync(caFile, 'CA');
  if (certFile !== undefined && keyFile !== undefined) {
    tls.cert = readTlsFileSync(certFile, 'certificate');
    tls.key = readTlsFileSync(keyFile, 'key');
  }
  return { host, port, maxLineBytes, tls };
}
