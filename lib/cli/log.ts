import { type DestinationStream, type Logger as PinoLogger, pino } from 'pino';
import { formatLine } from '../logger.js';
import { UsageError } from './flags.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

// What pino puts on every line; the pretty form shows the rest as key=value.
const HOUSEKEEPING = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg']);
const LABEL_PREFIX: Record<string, string> = { fatal: 'FATAL: ', error: 'ERROR: ', warn: 'warning: ', info: '', debug: 'debug: ', trace: 'trace: ' };

export function logLevelFlag(value: string | undefined): LogLevelName {
  if (value === undefined) return 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(value)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}; got '${value}'`);
  return value as LogLevelName;
}

export function logFormatFlag(value: string | undefined): LogFormat {
  if (value === undefined) return 'auto';
  if (!(LOG_FORMATS as readonly string[]).includes(value)) throw new UsageError(`--log-format must be one of ${LOG_FORMATS.join(', ')}; got '${value}'`);
  return value as LogFormat;
}

/** A pino line as a person reads it: `pigeonhole: warning: message (shard=1 code=...)`. */
export function prettyLine(line: string, labels: Record<number, string>): string {
  const entry = JSON.parse(line) as Record<string, unknown>;
  const label = labels[entry.level as number] ?? String(entry.level);
  const fields = Object.fromEntries(Object.entries(entry).filter(([key]) => !HOUSEKEEPING.has(key)));
  return `pigeonhole: ${LABEL_PREFIX[label] ?? `${label}: `}${formatLine(fields, String(entry.msg ?? ''))}\n`;
}

/**
 * The server's logger: pino, writing JSON lines to stderr (one object per line, for a log
 * collector) or, on a terminal, readable lines. `auto` picks by whether stderr is a TTY.
 * Writes are synchronous: lines are few, and none may be lost when the process exits.
 */
export function createCliLogger(level: LogLevelName, format: LogFormat): PinoLogger {
  const pretty = format === 'pretty' || (format === 'auto' && process.stderr.isTTY === true);
  const options = { name: 'pigeonhole', level };
  if (!pretty) return pino(options, pino.destination({ dest: 2, sync: true }));
  const labels = pino.levels.labels;
  const destination: DestinationStream = { write: (line: string) => void process.stderr.write(prettyLine(line, labels)) };
  return pino(options, destination);
}
