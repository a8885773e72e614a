import { copyBytes } from '../util/copy-bytes.js';

/** The server's replies, as the bytes that go on the wire (PROTOCOL: bare LF). */
export const REPLY_MESSAGE_SENT = Buffer.from('MESSAGE SENT\n');
export const REPLY_MESSAGE_FAILED = Buffer.from('MESSAGE FAILED\n');
export const REPLY_READ_ERROR = Buffer.from('READ ERROR\n');

/** Bytes needed by `writeMessageReply()` for a sender and body of these lengths. */
export function messageReplyLength(fromLength: number, bodyLength: number): number {
  return fromLength + 1 + bodyLength + 1;
}

/** READ's reply: the sender's name, then the message, each on its own line. */
export function writeMessageReply(target: Buffer, offset: number, from: string, body: Uint8Array): number {
  let at = offset + target.write(from, offset, 'latin1');
  target[at++] = 0x0a;
  target.set(body, at);
  at += body.length;
  target[at++] = 0x0a;
  return at;
}

/** READ's reply from bytes: the sender `from`, then the message source[start, end). */
export function writeMessageReplyBytes(target: Buffer, offset: number, from: Uint8Array, source: Uint8Array, start: number, end: number): number {
  let at = offset + copyBytes(from, 0, from.length, target, offset);
  target[at++] = 0x0a;
  at += copyBytes(source, start, end, target, at);
  target[at++] = 0x0a;
  return at;
}

/** LOGIN's reply: the count in decimal. */
export function writeCountReply(target: Buffer, offset: number, count: number): number {
  const at = offset + target.write(String(count), offset, 'latin1');
  target[at] = 0x0a;
  return at + 1;
}

/** Longest `writeCountReply()` output: a u32 in decimal and a LF. */
export const MAX_COUNT_REPLY_LENGTH = 11;
