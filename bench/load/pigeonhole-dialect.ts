import { type DialectCommands, type ReplyParser, KIND_COMPOSE, KIND_LOGIN, NEED_MORE, readCount, REPLY_COUNT, REPLY_EMPTY, REPLY_FAILED, REPLY_MESSAGE, REPLY_SENT, REPLY_WRONG } from './reply.js';

const LF = 0x0a;
const SENT = Buffer.from('MESSAGE SENT');
const FAILED = Buffer.from('MESSAGE FAILED');
const READ_ERROR = Buffer.from('READ ERROR');

function lineIs(buf: Buffer, start: number, end: number, expected: Buffer): boolean {
  return end - start === expected.length && expected.compare(buf, start, end) === 0;
}

/** PROTOCOL: replies are LF-terminated lines; READ answers `READ ERROR` or two lines. */
export class PigeonholeReplyParser implements ReplyParser {
  reply = REPLY_WRONG;
  count = 0;
  senderStart = -1;
  senderEnd = -1;
  bodyStart = -1;
  bodyEnd = -1;

  parse(buf: Buffer, pos: number, kind: number): number {
    const lf = buf.indexOf(LF, pos);
    if (lf < 0) return NEED_MORE;
    if (kind === KIND_COMPOSE) {
      this.reply = lineIs(buf, pos, lf, SENT) ? REPLY_SENT : lineIs(buf, pos, lf, FAILED) ? REPLY_FAILED : REPLY_WRONG;
      return lf + 1;
    }
    if (kind === KIND_LOGIN) {
      this.reply = readCount(this, buf, pos, lf) ? REPLY_COUNT : REPLY_WRONG;
      return lf + 1;
    }
    if (lineIs(buf, pos, lf, READ_ERROR)) {
      this.reply = REPLY_EMPTY;
      return lf + 1;
    }
    const lf2 = buf.indexOf(LF, lf + 1);
    if (lf2 < 0) return NEED_MORE;
    this.reply = REPLY_MESSAGE;
    this.senderStart = pos;
    this.senderEnd = lf;
    this.bodyStart = lf + 1;
    this.bodyEnd = lf2;
    return lf2 + 1;
  }
}

const NL = Buffer.from('\n');
const READ = Buffer.from('READ\n');

export const pigeonholeCommands: DialectCommands = {
  login: (user) => Buffer.from(`LOGIN ${user}\n`),
  count: (user) => Buffer.from(`LOGIN ${user}\n`),
  composeHead: (recipient) => Buffer.from(`COMPOSE ${recipient}\n`),
  composeTail: NL,
  read: () => READ,
  hasSender: true,
};
