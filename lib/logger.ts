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
 * call shape is pino's (fields first, then the message), so a pino logger fits as it is.
 */
export interface Logger {
  info(fields: LogFields, message: string): void;
  warn(fields: LogFields, message: string): void;
  error(fields: LogFields, message: string): void;
}

export type LogLevel = keyof Logger;

/** `message (key=value ...)`: a line for people, with the fields kept. */
export function formatLine(fields: LogFields, message: string): string {
  const pairs = Object.entries(fields)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
  return pairs.length === 0 ? message : `${message} (${pairs.join(' ')})`;
}

/** A logger that adds `fields` to every line (pino calls this a child). */
export function withFields(logger: Logger, fields: LogFields): Logger {
  return {
    info: (more, message) => logger.info({ ...fields, ...more }, message),
    warn: (more, message) => logger.warn({ ...fields, ...more }, message),
    error: (more, message) => logger.error({ ...fields, ...more }, message),
  };
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
