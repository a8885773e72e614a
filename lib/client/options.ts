import { ClientError } from '../errors.js';
import { DEFAULT_HOST, DEFAULT_MAX_LINE_BYTES, DEFAULT_PORT, MAX_MAX_LINE_BYTES, MIN_MAX_LINE_BYTES } from '../protocol/defaults.js';
import { usernameProblem } from '../protocol/username.js';
import { type ClientTlsOptions, resolveClientTls } from '../tls/client-tls.js';
import { checkHost, checkOptionNames, integerOption } from '../util/check-options.js';

/*
 * The checks a call passes before anything is written. PROTOCOL ("The client's side"):
 * the client refuses what the server would drop the connection for, and says why, so a
 * well-behaved client is never dropped.
 */

export interface ConnectOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 4000. */
  port?: number;
  /**
   * How long connect() may take (then it fails with PH_ERR_CLIENT_CONNECT_FAILED), and how
   * long the oldest unanswered call may wait with no reply byte arriving (then it fails
   * with PH_ERR_CLIENT_TIMEOUT). Default 10000.
   */
  timeoutMs?: number;
  /**
   * The server's line limit (its `maxLineBytes`, default 65536): longer messages are
   * refused before sending, and a reply line longer than this is treated as a broken
   * server. Set it to match a server started with another `--max-line`.
   */
  maxLineBytes?: number;
  /**
   * Connect over TLS: `true` verifies the server against Node's built-in public CAs; an
   * object may give the CA to verify against, this client's certificate and key (for a
   * server that requires one) and the name the server's certificate must carry.
   * Default: plain TCP.
   */
  tls?: boolean | ClientTlsOptions;
}

export type ResolvedConnectOptions = Required<Omit<ConnectOptions, 'tls'>> & { readonly tls: ClientTlsOptions | null };

export const DEFAULT_CLIENT_TIMEOUT_MS = 10_000;

const KNOWN: readonly string[] = ['host', 'port', 'timeoutMs', 'maxLineBytes', 'tls'];

export function resolveConnectOptions(options: ConnectOptions = {}): ResolvedConnectOptions {
  checkOptionNames(options, KNOWN, 'connect()');
  const { host = DEFAULT_HOST, port = DEFAULT_PORT, timeoutMs = DEFAULT_CLIENT_TIMEOUT_MS, maxLineBytes = DEFAULT_MAX_LINE_BYTES } = options;
  checkHost(host);
  return {
    host,
    port: integerOption('port', port, 1, 65_535),
    // Capped at setTimeout's limit; there is no "never": no call may hang forever.
    timeoutMs: integerOption('timeoutMs', timeoutMs, 1, 2 ** 31 - 1),
    maxLineBytes: integerOption('maxLineBytes', maxLineBytes, MIN_MAX_LINE_BYTES, MAX_MAX_LINE_BYTES),
    tls: resolveClientTls(options.tls),
  };
}

/** The name's bytes, ready for the wire, or a ClientError saying what is wrong with it. */
export function usernameBytes(name: unknown, role: 'username' | 'recipient'): Buffer {
  if (typeof name !== 'string') {
    throw new ClientError('PH_ERR_CLIENT_INVALID_USERNAME', `the ${role} must be a string, got ${typeof name}`);
  }
  const problem = usernameProblem(name);
  if (problem !== null) throw new ClientError('PH_ERR_CLIENT_INVALID_USERNAME', `invalid ${role} ${JSON.stringify(name)}: ${problem}`);
  return Buffer.from(name, 'latin1');
}

/** The message's bytes (a string is sent as UTF-8), or a ClientError saying why it cannot go. */
export function messageBytes(message: unknown, maxLineBytes: number): Buffer {
  let bytes: Buffer;
  if (typeof message === 'string') bytes = Buffer.from(message, 'utf8');
  else if (message instanceof Uint8Array) bytes = Buffer.from(message.buffer, message.byteOffset, message.byteLength);
  else throw new ClientError('PH_ERR_CLIENT_INVALID_MESSAGE', `a message must be a string or a Uint8Array, got ${typeof message}`);
  // PROTOCOL: a LF would end the message early and turn the rest into a command. A CR is
  // refused too: one right before the LF would be stripped by the server, so refusing
  // every CR keeps the rule simple and the round trip exact.
  if (bytes.includes(0x0a)) throw new ClientError('PH_ERR_CLIENT_INVALID_MESSAGE', 'a message cannot contain a line break (LF)');
  if (bytes.includes(0x0d)) throw new ClientError('PH_ERR_CLIENT_INVALID_MESSAGE', 'a message cannot contain a carriage return (CR)');
  if (bytes.length > maxLineBytes) {
    throw new ClientError(
      'PH_ERR_CLIENT_INVALID_MESSAGE',
      `a message is at most ${maxLineBytes} bytes (maxLineBytes); this one is ${bytes.length}`,
    );
  }
  return bytes;
}

export function checkLoggedIn(loggedIn: boolean, call: 'compose' | 'read'): void {
  // PROTOCOL: COMPOSE or READ before LOGIN drops the connection.
  if (!loggedIn) throw new ClientError('PH_ERR_CLIENT_NOT_LOGGED_IN', `log in before ${call === 'compose' ? 'composing' : 'reading'}: call login() first`);
}

export function checkNotLoggedIn(loggedIn: boolean): void {
  // PROTOCOL: a second LOGIN drops the connection.
  if (loggedIn) throw new ClientError('PH_ERR_CLIENT_ALREADY_LOGGED_IN', 'this connection has already logged in; connect again to log in as someone else');
}
