/**
 * What a log line says beyond its prose: fields an operator can filter on. `code` is a
 * PH_ERR_* code (or another stable code) when the line reports an error.
 */
export interface LogFields {
  readonly code?: string;
  /** The shard the line is about. */
  readonly shard?: number;
  /** The client address the line is about, as host:port. */
  readonly remote?: string;
  readonly [field: string]: unknown;
}

/**
 * Where the server reports what an operator should know; a host may pass its own. The
 * call shape is pino's (fields first, then the message), so a pino logger fits as it is,
 * and so does bunyan's. A logger whose methods take only a message goes through
 * lineLogger(), which hands each method one line of text.
 */
export interface Logger {
  info(fields: LogFields, message: string): void;
  warn(fields: LogFields, message: string): void;
  error(fields: LogFields, message: string): void;
  /** Routine events an operator looks at only when hunting a problem (failed TLS handshakes). */
  debug?(fields: LogFields, message: string): void;
}

/** The levels a shard's log line may cross its port with. */
export type LogLevel = 'info' | 'warn' | 'error';

/** `message (key=value ...)`: a line for people, with the fields kept. */
export function formatLine(fields: LogFields, message: string): string {
  const pairs = Object.entries(fields)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
  return pairs.length === 0 ? message : `${message} (${pairs.join(' ')})`;
}

/** A logger that adds `fields` to every line (pino calls this a child). */
export function withFields(logger: Logger, fields: LogFields): Logger {
  const child: Logger = {
    info: (more, message) => logger.info({ ...fields, ...more }, message),
    warn: (more, message) => logger.warn({ ...fields, ...more }, message),
    error: (more, message) => logger.error({ ...fields, ...more }, message),
  };
  if (logger.debug !== undefined) child.debug = (more, message) => logger.debug?.({ ...fields, ...more }, message);
  return child;
}

/** A logger whose methods take one string, such as `console` or a line-based host logger. */
export interface LineLogger {
  info(line: string): void;
  warn(line: string): void;
  error(line: string): void;
  debug?(line: string): void;
}

/**
 * Adapts a logger that takes only a message: each line reaches it as
 * `message (key=value ...)`, its fields written out rather than lost.
 */
export function lineLogger(target: LineLogger): Logger {
  const logger: Logger = {
    info: (fields, message) => target.info(formatLine(fields, message)),
    warn: (fields, message) => target.warn(formatLine(fields, message)),
    error: (fields, message) => target.error(formatLine(fields, message)),
  };
  const { debug } = target;
  if (typeof debug === 'function') logger.debug = (fields, message) => debug.call(target, formatLine(fields, message));
  return logger;
}

export const consoleLogger: Logger = {
  info: (fields, message) => console.error(`pigeonhole: ${formatLine(fields, message)}`),
  warn: (fields, message) => console.error(`pigeonhole: warning: ${formatLine(fields, message)}`),
  error: (fields, message) => console.error(`pigeonhole: ERROR: ${formatLine(fields, message)}`),
};

export const silentLogger: Logger = {
  info: () => {},
  warn: () => {},
  error: () => {},
};
