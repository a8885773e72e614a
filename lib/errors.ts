/**
 * Every error pigeonhole raises carries a stable `code` to branch on; messages are for
 * people and may change. The table below is the single list of codes: docs/errors.md
 * must describe each one (a test checks).
 */
export const ERROR_CODES = {
  // Protocol: the server never sends these; it drops the connection. They reach logs,
  // tests and the client library's checks.
  PH_ERR_PROTOCOL_LINE_TOO_LONG: 'a line is longer than maxLineBytes',
  PH_ERR_PROTOCOL_UNKNOWN_COMMAND: 'not a command of the protocol',
  PH_ERR_PROTOCOL_BAD_USERNAME: 'a username must be 1-256 bytes of visible ASCII (0x21-0x7E)',
  PH_ERR_PROTOCOL_NOT_LOGGED_IN: 'the command needs LOGIN first',
  PH_ERR_PROTOCOL_ALREADY_LOGGED_IN: 'LOGIN may only be the first command',
  // Options given to createServer(), listen() or the CLI.
  PH_ERR_OPTION_INVALID: 'an option has a bad value',
  PH_ERR_OPTION_UNKNOWN: 'an option is not known',
  // Mailbox shards.
  PH_ERR_SHARD_CRASHED: 'a mailbox shard worker exited unexpectedly',
  PH_ERR_SHARD_START_FAILED: 'a mailbox shard worker could not start',
  // Mailbox storage.
  PH_ERR_STORE_OPEN_FAILED: 'the mailbox store could not be opened',
  PH_ERR_STORE_WRITE_FAILED: 'the mailbox store could not take a write',
  // The client library: checks made before anything is sent, and the connection's fate.
  PH_ERR_CLIENT_INVALID_USERNAME: 'a username must be 1-256 bytes of visible ASCII (0x21-0x7E)',
  PH_ERR_CLIENT_INVALID_MESSAGE: 'a message cannot contain a line break and must fit the line limit',
  PH_ERR_CLIENT_NOT_LOGGED_IN: 'log in before composing or reading',
  PH_ERR_CLIENT_ALREADY_LOGGED_IN: 'a connection logs in once',
  PH_ERR_CLIENT_CONNECT_FAILED: 'could not connect to the server',
  PH_ERR_CLIENT_CLOSED: 'the connection to the server is closed',
  PH_ERR_CLIENT_TIMEOUT: 'the server did not answer in time',
  PH_ERR_CLIENT_UNEXPECTED_REPLY: 'the server sent a reply the protocol does not allow here',
  // The server's lifecycle.
  PH_ERR_SERVER_CLOSED: 'the server is closed',
  PH_ERR_SERVER_LISTENING: 'the server is already listening',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface ErrorOptions {
  cause?: unknown;
}

export class PigeonholeError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string = ERROR_CODES[code], options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** The peer broke the protocol; the server's answer is to drop the connection. */
export class ProtocolError extends PigeonholeError {}

export class InvalidOptionError extends PigeonholeError {
  constructor(message: string, code: 'PH_ERR_OPTION_INVALID' | 'PH_ERR_OPTION_UNKNOWN' = 'PH_ERR_OPTION_INVALID') {
    super(code, message);
  }
}

export class ShardError extends PigeonholeError {}

export class ServerStateError extends PigeonholeError {}

export class StoreError extends PigeonholeError {}

/** A client call refused before sending, or failed by the connection. */
export class ClientError extends PigeonholeError {}

/** The server dropped the connection, or it was closed: pending calls reject with this. */
export class ClientClosedError extends ClientError {
  constructor(message: string = ERROR_CODES.PH_ERR_CLIENT_CLOSED, options?: ErrorOptions) {
    super('PH_ERR_CLIENT_CLOSED', message, options);
  }
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

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}
