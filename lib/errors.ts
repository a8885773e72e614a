/**
 * Every error pigeonhole raises carries a stable `code` to branch on; messages are for
 * people and may change. The table below is the single list of codes: docs/errors.md
 * must describe each one (a test checks). A code's area (PH_ERR_<AREA>_...) says which
 * class raises it, and each class takes only the codes of its own area, as undici's
 * errors do.
 */
export const ERROR_CODES = {
  // Protocol: the server never sends these; it drops the connection. They reach logs,
  // tests and the client library's checks.
  PH_ERR_PROTOCOL_LINE_TOO_LONG: 'a line is longer than maxLineBytes',
  PH_ERR_PROTOCOL_UNKNOWN_COMMAND: 'not a command of the protocol',
  PH_ERR_PROTOCOL_BAD_USERNAME: 'a username must be 1-256 bytes of visible ASCII (0x21-0x7E)',
  PH_ERR_PROTOCOL_NOT_LOGGED_IN: 'the command needs LOGIN first',
  PH_ERR_PROTOCOL_ALREADY_LOGGED_IN: 'LOGIN may only be the first command',
  PH_ERR_PROTOCOL_IDENTITY_MISMATCH: "with client certificates, LOGIN must name the certificate's subject CN",
  // Options given to createServer(), listen() or the CLI.
  PH_ERR_OPTION_INVALID: 'an option has a bad value',
  PH_ERR_OPTION_UNKNOWN: 'an option is not known',
  // Mailbox shards.
  PH_ERR_SHARD_CRASHED: 'a mailbox shard worker exited unexpectedly',
  PH_ERR_SHARD_START_FAILED: 'a mailbox shard worker could not start',
  PH_ERR_SHARD_STALLED: 'a mailbox shard has not answered a batch for 5 s or more',
  // Acceptor threads (acceptors > 1): each accepts and serves connections.
  PH_ERR_ACCEPTOR_CRASHED: 'an acceptor thread exited unexpectedly: its connections were dropped',
  PH_ERR_ACCEPTOR_START_FAILED: 'an acceptor thread could not start',
  // Mailbox storage.
  PH_ERR_STORE_OPEN_FAILED: 'the mailbox store could not be opened',
  PH_ERR_STORE_WRITE_FAILED: 'the mailbox store could not take a write',
  PH_ERR_STORE_READ_FAILED: 'the mailbox store could not read a message',
  PH_ERR_STORE_DAMAGED: 'a mailbox store file is damaged',
  PH_ERR_STORE_FULL: 'the disk or the store size cap is full: COMPOSE is refused until there is room',
  PH_ERR_STORE_LAYOUT_MISMATCH: 'the data directory does not hold the files its pigeonhole.json describes',
  // Limits on what clients may hold: over-limit connections are closed, never answered.
  PH_ERR_LIMIT_CONNECTIONS: 'a connection was refused: maxConnections are open',
  PH_ERR_LIMIT_CONNECTIONS_PER_IP: 'a connection was refused: its address has maxConnectionsPerIp open',
  PH_ERR_LIMIT_CONNECTION_RATE_PER_IP: 'a connection was refused: its address opened maxConnectionRatePerIp connections in the last second',
  PH_ERR_LIMIT_LINE_TIMEOUT: 'a connection was closed: a line was not complete within lineTimeoutMs',
  PH_ERR_LIMIT_LINE_BUFFER: 'a connection was closed: unfinished lines of all connections passed maxLineBufferBytes',
  PH_ERR_LIMIT_REPLY_BUFFER: 'a connection was closed: replies not taken by their peers passed maxReplyBufferBytes',
  PH_ERR_STORE_UNAVAILABLE: 'the mailbox store (Redis) cannot be reached: the command was not applied',
  PH_ERR_STORE_OUTCOME_UNKNOWN: 'a write to the mailbox store failed in a way that leaves unknown whether it took effect (Redis: the connection broke with the command in flight; SQLite: the commit itself failed)',
  PH_ERR_STORE_NOT_REPLICATED: 'a write was stored, but fewer replicas than asked confirmed it in time',
  PH_ERR_STORE_BAD_RECORD: 'the mailbox store holds or answered something that is not a pigeonhole message',
  // The client library: checks made before anything is sent, and the connection's fate.
  PH_ERR_CLIENT_INVALID_USERNAME: 'a username must be 1-256 bytes of visible ASCII (0x21-0x7E)',
  PH_ERR_CLIENT_INVALID_MESSAGE: 'a message cannot contain a line break and must fit the line limit',
  PH_ERR_CLIENT_NOT_LOGGED_IN: 'log in before composing or reading',
  PH_ERR_CLIENT_ALREADY_LOGGED_IN: 'a connection logs in once',
  PH_ERR_CLIENT_CONNECT_FAILED: 'could not connect to the server',
  PH_ERR_CLIENT_CLOSED: 'the connection to the server is closed',
  PH_ERR_CLIENT_TIMEOUT: 'the server did not answer in time',
  PH_ERR_CLIENT_UNEXPECTED_REPLY: 'the server sent a reply the protocol does not allow here',
  PH_ERR_CLIENT_TLS_UNTRUSTED: "the server's certificate could not be verified",
  PH_ERR_CLIENT_TLS_REJECTED: "the server refused this client's certificate, or wanted one",
  // TLS material: certificate, key and CA files or contents, for the server or the client.
  PH_ERR_TLS_FILE_UNREADABLE: 'a certificate, key or CA file cannot be read',
  PH_ERR_TLS_INVALID: 'the certificate, key or CA cannot be used',
  // The server's lifecycle.
  PH_ERR_SERVER_CLOSED: 'the server is closed',
  PH_ERR_SERVER_LISTENING: 'the server is already listening',
  PH_ERR_SERVER_ACCEPT_FAILED: 'the server could not accept a connection (out of file descriptors, say)',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The codes of one area: `AreaCode<'STORE'>` is every `PH_ERR_STORE_...`. */
export type AreaCode<Area extends string> = Extract<ErrorCode, `PH_ERR_${Area}_${string}`>;

export type ProtocolErrorCode = AreaCode<'PROTOCOL'>;
export type OptionErrorCode = AreaCode<'OPTION'>;
export type ShardErrorCode = AreaCode<'SHARD'>;
export type AcceptorErrorCode = AreaCode<'ACCEPTOR'>;
export type StoreErrorCode = AreaCode<'STORE'>;
export type ClientErrorCode = AreaCode<'CLIENT'>;
export type ServerErrorCode = AreaCode<'SERVER'>;
export type LimitErrorCode = AreaCode<'LIMIT'>;
export type TlsErrorCode = AreaCode<'TLS'>;

export interface ErrorOptions {
  cause?: unknown;
}

/** The base of every pigeonhole error; `C` is the codes its class may carry. */
export class PigeonholeError<C extends ErrorCode = ErrorCode> extends Error {
  /** The area whose codes this class takes; null takes any code. */
  static readonly area: string | null = null;
  readonly code: C;

  constructor(code: C, message: string = ERROR_CODES[code], options?: ErrorOptions) {
    super(message, options);
    // The types already keep areas apart; this keeps them apart for JavaScript callers.
    const { area } = new.target as typeof PigeonholeError;
    if (area !== null && !code.startsWith(`PH_ERR_${area}_`)) {
      throw new TypeError(`${new.target.name} takes PH_ERR_${area}_* codes, not ${code}`);
    }
    this.code = code;
    this.name = new.target.name;
  }
}

/** The peer broke the protocol; the server's answer is to drop the connection. */
export class ProtocolError extends PigeonholeError<ProtocolErrorCode> {
  static override readonly area = 'PROTOCOL';
}

export class InvalidOptionError extends PigeonholeError<OptionErrorCode> {
  static override readonly area = 'OPTION';

  constructor(message: string, code: OptionErrorCode = 'PH_ERR_OPTION_INVALID') {
    super(code, message);
  }
}

export class ShardError extends PigeonholeError<ShardErrorCode> {
  static override readonly area = 'SHARD';
}

/** An acceptor thread died or could not start. */
export class AcceptorError extends PigeonholeError<AcceptorErrorCode> {
  static override readonly area = 'ACCEPTOR';
}

export class ServerStateError extends PigeonholeError<ServerErrorCode> {
  static override readonly area = 'SERVER';
}

export class StoreError extends PigeonholeError<StoreErrorCode> {
  static override readonly area = 'STORE';
}

/** A client went past a server limit; reported in logs (the client's connection is closed). */
export class LimitError extends PigeonholeError<LimitErrorCode> {
  static override readonly area = 'LIMIT';
}

/** Certificates, keys or CAs that cannot be read or used, on either side. */
export class TlsError extends PigeonholeError<TlsErrorCode> {
  static override readonly area = 'TLS';
}

/** A client call refused before sending, or failed by the connection. */
export class ClientError extends PigeonholeError<ClientErrorCode> {
  static override readonly area = 'CLIENT';
}

/** The server dropped the connection, or it was closed: pending calls reject with this. */
export class ClientClosedError extends ClientError {
  constructor(message: string = ERROR_CODES.PH_ERR_CLIENT_CLOSED, options?: ErrorOptions) {
    super('PH_ERR_CLIENT_CLOSED', message, options);
  }
}

/** A thrown value's message, for a log line or a wrapping error's message. */
export function errorMessage(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}

/** Structured clone drops subclasses and extra fields, so errors cross a port as data. */
export interface SerializedError {
  code: string;
  message: string;
}

export function serializeError(err: unknown): SerializedError {
  if (err instanceof PigeonholeError) return { code: err.code, message: err.message };
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return { code: typeof code === 'string' ? code : 'ERR_UNKNOWN', message: err.message };
  }
  return { code: 'ERR_UNKNOWN', message: String(err) };
}

// Which class raises each area's codes, to rebuild an error that crossed a port.
const CLASS_BY_AREA: Record<string, new (code: never, message: string) => PigeonholeError> = {
  PROTOCOL: ProtocolError,
  SHARD: ShardError,
  ACCEPTOR: AcceptorError,
  STORE: StoreError,
  CLIENT: ClientError,
  SERVER: ServerStateError,
  LIMIT: LimitError,
  TLS: TlsError,
};

/**
 * The typed error again, from what serializeError() sent: a pigeonhole code becomes its
 * own class; any other code (an errno, say) a plain Error carrying that code.
 */
export function deserializeError({ code, message }: SerializedError): Error {
  if (isErrorCode(code)) {
    if (code.startsWith('PH_ERR_OPTION_')) return new InvalidOptionError(message, code as OptionErrorCode);
    const area = code.split('_')[2] as string;
    const ErrorClass = CLASS_BY_AREA[area];
    if (ErrorClass !== undefined) return new ErrorClass(code as never, message);
  }
  return Object.assign(new Error(message), { code });
}

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}
