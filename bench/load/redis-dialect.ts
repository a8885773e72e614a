import { type DialectCommands, type ReplyParser, KIND_COMPOSE, KIND_READ, NEED_MORE, readCount, REPLY_COUNT, REPLY_EMPTY, REPLY_MESSAGE, REPLY_SENT, REPLY_WRONG } from './reply.js';

const CR = 0x0d;
const LF = 0x0a;
const ZERO = 0x30;
const COLON = 0x3a; // integer reply
const DOLLAR = 0x24; // bulk string
const UNDERSCORE = 0x5f; // RESP3 null
const MINUS = 0x2d;

/**
 * RESP replies to the inline commands the generator sends: RPUSH answers `:n`, LLEN `:n`,
 * LPOP `$len` + bytes, or a null (`$-1`, or `_` under RESP3). `-ERR` is always wrong.
 */
export class RedisReplyParser implements ReplyParser {
  reply = REPLY_WRONG;
  count = 0;
  senderStart = -1;
  senderEnd = -1;
  bodyStart = -1;
  bodyEnd = -1;

  parse(buf: Buffer, pos: number, kind: number): number {
    const lf = buf.indexOf(LF, pos);
    if (lf < 0) return NEED_MORE;
    const type = buf[pos];
    if (lf - pos < 2 || buf[lf - 1] !== CR) {
      this.reply = REPLY_WRONG;
      return lf + 1;
    }
    if (kind === KIND_READ) {
      if (type === UNDERSCORE && lf - pos === 2) {
        this.reply = REPLY_EMPTY;
        return lf + 1;
      }
      if (type !== DOLLAR) {
        this.reply = REPLY_WRONG;
        return lf + 1;
      }
      if (lf - pos === 4 && buf[pos + 1] === MINUS && buf[pos + 2] === ZERO + 1) {
        this.reply = REPLY_EMPTY;
        return lf + 1;
      }
      if (!readCount(this, buf, pos + 1, lf - 1)) {
        this.reply = REPLY_WRONG;
        return lf + 1;
      }
      const bodyStart = lf + 1;
      const bodyEnd = bodyStart + this.count;
      if (buf.length < bodyEnd + 2) return NEED_MORE;
      this.reply = buf[bodyEnd] === CR && buf[bodyEnd + 1] === LF ? REPLY_MESSAGE : REPLY_WRONG;
      this.bodyStart = bodyStart;
      this.bodyEnd = bodyEnd;
      return bodyEnd + 2;
    }
    // RPUSH and LLEN both answer an integer.
    if (type !== COLON || !readCount(this, buf, pos + 1, lf - 1)) {
      this.reply = REPLY_WRONG;
      return lf + 1;
    }
    this.reply = kind === KIND_COMPOSE ? REPLY_SENT : REPLY_COUNT;
    return lf + 1;
  }
}

const CRLF = Buffer.from('\r\n');

// Inline commands (space-separated words, CRLF): the issue asks for them, and names and
// bodies never hold a space or a quote, so no quoting is needed.
export const redisCommands: DialectCommands = {
  login: () => null,
  count: (user) => Buffer.from(`LLEN ${user}\r\n`),
  composeHead: (recipient) => Buffer.from(`RPUSH ${recipient} `),
  composeTail: CRLF,
  read: (user) => Buffer.from(`LPOP ${user}\r\n`),
  hasSender: false,
};
