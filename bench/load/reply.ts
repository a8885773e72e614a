// What a command expects back.
export const KIND_LOGIN = 0;
export const KIND_COMPOSE = 1;
export const KIND_READ = 2;

// What a reply turned out to be.
export const REPLY_WRONG = 0;
export const REPLY_SENT = 1;
export const REPLY_FAILED = 2;
export const REPLY_EMPTY = 3;
export const REPLY_MESSAGE = 4;
export const REPLY_COUNT = 5;

export const NEED_MORE = -1;

const ZERO = 0x30;

/** The decimal number in buf[start, end), or -1 if it is not one (empty, a non-digit, too long). */
export function parseDecimal(buf: Buffer, start: number, end: number): number {
  if (end === start || end - start > 15) return -1;
  let n = 0;
  for (let at = start; at < end; at++) {
    const digit = (buf[at] as number) - ZERO;
    if (digit < 0 || digit > 9) return -1;
    n = n * 10 + digit;
  }
  return n;
}

/**
 * Parses one reply in place: no string per line. After parse() returns a position, the
 * fields describe that reply; they are only valid until the next call.
 */
export interface ReplyParser {
  reply: number;
  /** REPLY_COUNT: the number. */
  count: number;
  /** REPLY_MESSAGE: where the sender line (-1 when the protocol has none) and the body lie. */
  senderStart: number;
  senderEnd: number;
  bodyStart: number;
  bodyEnd: number;
  /** Returns the position after the reply starting at pos, or NEED_MORE. */
  parse(buf: Buffer, pos: number, kind: number): number;
}

/** The bytes of each command, for one user. */
export interface DialectCommands {
  /** Sent once when a load connection opens; null when the protocol has no login. */
  login(user: string): Buffer | null;
  /** Asks how many messages a user holds, before draining it (answered by a REPLY_COUNT). */
  count(user: string): Buffer;
  /** What precedes the body of a COMPOSE to this recipient, and what follows it. */
  composeHead(recipient: string): Buffer;
  readonly composeTail: Buffer;
  read(user: string): Buffer;
  /** Whether READ replies name the sender (pigeonhole does, a Redis list does not). */
  readonly hasSender: boolean;
}

/** Sets parser.count from the decimal in buf[start, end); false if it is not one. */
export function readCount(parser: ReplyParser, buf: Buffer, start: number, end: number): boolean {
  const n = parseDecimal(buf, start, end);
  if (n < 0) return false;
  parser.count = n;
  return true;
}
