import type { MessagePort } from 'node:worker_threads';
import type { SerializedError } from '../errors.js';
import type { LogFields, LogLevel } from '../logger.js';
import type { DiskSpaceOptions } from '../store/disk-space.js';
import type { StoreStats } from '../store/store.js';
import { ByteWriter } from '../util/bytes.js';
import { MAX_COUNT_REPLY_LENGTH, messageReplyLength, writeCountReply, writeMessageReply, writeMessageReplyBytes } from '../protocol/encode.js';
import { copyBytes } from '../util/copy-bytes.js';
import type { RingBuffers } from './ring-channel.js';

/**
 * What the acceptor and a shard say to each other, and the one place that knows the
 * binary batch format: the router writes requests and reads replies with the helpers
 * below, the shard core reads requests and writes replies with them, and so do tests.
 *
 * Data travels as one binary batch per shard per event-loop turn, its ArrayBuffer
 * transferred rather than cloned: a batch of a thousand commands is one postMessage and
 * no per-command object on either side. Control messages are small objects told apart
 * by `op`.
 *
 * Request batch: a header, then one record per command, back to back.
 *   header      u32 seq (1, 2, 3... per shard, 1 again after 2^32 - 1: seqAfter()) |
 *               u32 acked (the seq of the last batch whose reply the acceptor has
 *               received; a durable shard may forget replies up to it)
 *               | u32 flags (FLAG_RESENT: sent again after a crash, may be applied already)
 *   OP_COUNT    u8 op | u16 n | user[n]
 *   OP_COMPOSE  u8 op | u16 n | to[n] | u16 m | from[m] | u32 k | body[k]
 *   OP_READ     u8 op | u16 n | user[n]
 * Reply batch: one reply per request, in request order (so no request ids are needed):
 *   the replies' exact wire bytes, back to back
 *   u32 length of each reply, in order; ABORTED: no answer can be given (the acceptor
 *     drops the connection), and no bytes above
 *   u32 count of replies
 * The wire bytes come first and together so that the replies of one connection, which
 * sit side by side in a batch, go to its socket as one range, with no copy.
 */
export const OP_COUNT = 1;
export const OP_COMPOSE = 2;
export const OP_READ = 3;
export type ShardOp = typeof OP_COUNT | typeof OP_COMPOSE | typeof OP_READ;

// The request batch header, field by field.
const HEADER_SEQ = 0;
const HEADER_ACKED = 4;
const HEADER_FLAGS = 8;
export const BATCH_HEADER_BYTES = 12;
export const FLAG_RESENT = 1;

// A reply record's length that is no length: the request has no answer.
const ABORTED = 0xffff_ffff;

export interface BatchHeader {
  readonly seq: number;
  readonly acked: number;
  /** Sent again after its shard was lost: it may have been applied already. */
  readonly resent: boolean;
}

// ---- Request batches ----------------------------------------------------------------

/** Starts a request batch in an empty writer: room for the header, filled in by sealBatch(). */
export function beginBatch(writer: ByteWriter): void {
  writer.skip(BATCH_HEADER_BYTES);
}

const MAX_SEQ = 0xffff_ffff;

/**
 * The seq after `seq`: 1 again after the largest a u32 holds. A durable shard has one
 * batch in flight, so the first batch after the wrap says acked = MAX_SEQ, and the
 * journal forgets every reply up to it (seqs 1 to MAX_SEQ) before it records the new 1.
 */
export function seqAfter(seq: number): number {
  return seq >= MAX_SEQ ? 1 : seq + 1;
}

/** Fills in the header of a batch begun with beginBatch(). */
export function sealBatch(batch: Buffer, seq: number, acked: number): void {
  batch.writeUInt32LE(seq, HEADER_SEQ);
  batch.writeUInt32LE(acked, HEADER_ACKED);
  batch.writeUInt32LE(0, HEADER_FLAGS);
}

/** Marks a sealed batch as sent again, so the shard looks in its journal before applying it. */
export function markResent(batch: Buffer): void {
  batch.writeUInt32LE(batch.readUInt32LE(HEADER_FLAGS) | FLAG_RESENT, HEADER_FLAGS);
}

export function readBatchHeader(batch: Buffer): BatchHeader {
  return {
    seq: batch.readUInt32LE(HEADER_SEQ),
    acked: batch.readUInt32LE(HEADER_ACKED),
    resent: (batch.readUInt32LE(HEADER_FLAGS) & FLAG_RESENT) !== 0,
  };
}

export function writeCount(writer: ByteWriter, user: Uint8Array): void {
  writeNameRecord(writer, OP_COUNT, user);
}

/** COMPOSE's record: to `to[toStart, toEnd)` from `from`, the message body[start, end). */
export function writeCompose(writer: ByteWriter, to: Uint8Array, toStart: number, toEnd: number, from: Uint8Array, body: Uint8Array, start: number, end: number): void {
  const toLength = toEnd - toStart;
  const length = end - start;
  // One reserve and plain byte stores: this runs once per command.
  const buffer = writer.reserve(9 + toLength + from.length + length);
  let at = writer.length;
  buffer[at++] = OP_COMPOSE;
  buffer[at++] = toLength;
  buffer[at++] = toLength >>> 8;
  at += copyBytes(to, toStart, toEnd, buffer, at);
  buffer[at++] = from.length;
  buffer[at++] = from.length >>> 8;
  at += copyBytes(from, 0, from.length, buffer, at);
  buffer[at++] = length;
  buffer[at++] = length >>> 8;
  buffer[at++] = length >>> 16;
  buffer[at++] = length >>> 24;
  at += copyBytes(body, start, end, buffer, at);
  writer.advance(at - writer.length);
}

export function writeRead(writer: ByteWriter, user: Uint8Array): void {
  writeNameRecord(writer, OP_READ, user);
}

function writeNameRecord(writer: ByteWriter, op: ShardOp, name: Uint8Array): void {
  const buffer = writer.reserve(3 + name.length);
  let at = writer.length;
  buffer[at++] = op;
  buffer[at++] = name.length;
  buffer[at++] = name.length >>> 8;
  at += copyBytes(name, 0, name.length, buffer, at);
  writer.advance(at - writer.length);
}

/**
 * Walks a request batch's records. After next() returns true, `op` is the record's op
 * and its fields are ranges of `batch`: the user (COUNT, READ) or recipient (COMPOSE) is
 * [nameStart, nameEnd); a COMPOSE's sender [fromStart, fromEnd) and message
 * [bodyStart, bodyEnd). Ranges, not views: a record costs no object.
 */
export class RequestReader {
  readonly batch: Buffer;
  op: ShardOp = OP_COUNT;
  nameStart = 0;
  nameEnd = 0;
  fromStart = 0;
  fromEnd = 0;
  bodyStart = 0;
  bodyEnd = 0;
  #offset = BATCH_HEADER_BYTES;

  constructor(batch: Buffer) {
    this.batch = batch;
  }

  next(): boolean {
    const batch = this.batch;
    let at = this.#offset;
    if (at >= batch.length) return false;
    const op = batch[at++] as number;
    if (op !== OP_COUNT && op !== OP_COMPOSE && op !== OP_READ) throw new Error(`unknown shard op ${op} at offset ${at - 1}`);
    this.op = op;
    this.nameStart = at + 2;
    this.nameEnd = this.nameStart + batch.readUInt16LE(at);
    at = this.nameEnd;
    if (op === OP_COMPOSE) {
      this.fromStart = at + 2;
      this.fromEnd = this.fromStart + batch.readUInt16LE(at);
      at = this.fromEnd;
      this.bodyStart = at + 4;
      this.bodyEnd = this.bodyStart + batch.readUInt32LE(at);
      at = this.bodyEnd;
    }
    this.#offset = at;
    return true;
  }
}

/**
 * Turns the READs among a request batch's records for which `withdrawn(index)` holds
 * (`index` counts the records from 0) into COUNTs of the same user, which have the same
 * layout: nothing is taken, and a reply still comes in the READ's place.
 */
export function withdrawReads(batch: Buffer, withdrawn: (index: number) => boolean): void {
  const reader = new RequestReader(batch);
  for (let index = 0; reader.next(); index++) {
    // The op byte, then the name's u16 length, then the name.
    if (reader.op === OP_READ && withdrawn(index)) batch[reader.nameStart - 3] = OP_COUNT;
  }
}

// ---- Reply batches ------------------------------------------------------------------

/**
 * Writes a reply batch: wire bytes as they come, lengths on the side, both joined by
 * take(). A reply is copied in whole (reply()) or encoded in place (countReply(),
 * messageReply(), messageReplyFrom()), in room reserved for its longest form.
 */
export class ReplyWriter {
  readonly #bytes: ByteWriter;
  #lengths = new Uint32Array(1024);
  #count = 0;

  constructor(initialBytes = 16 * 1024) {
    this.#bytes = new ByteWriter(initialBytes);
  }

  #end(start: number, end: number): void {
    this.#bytes.advance(end - start);
    this.#push(end - start);
  }

  reply(wire: Uint8Array): void {
    const buffer = this.#bytes.reserve(wire.length);
    const start = this.#bytes.length;
    this.#end(start, start + copyBytes(wire, 0, wire.length, buffer, start));
  }

  /** LOGIN's answer: the count, one line. */
  countReply(count: number): void {
    const buffer = this.#bytes.reserve(MAX_COUNT_REPLY_LENGTH);
    const start = this.#bytes.length;
    this.#end(start, writeCountReply(buffer, start, count));
  }

  /** READ's answer: the sender's line, then the message's. */
  messageReply(from: string, body: Uint8Array): void {
    const buffer = this.#bytes.reserve(messageReplyLength(from.length, body.length));
    const start = this.#bytes.length;
    this.#end(start, writeMessageReply(buffer, start, from, body));
  }

  /** READ's answer with the message a range of `source` (a store's own chunk). */
  messageReplyFrom(from: Uint8Array, source: Uint8Array, bodyStart: number, bodyEnd: number): void {
    const buffer = this.#bytes.reserve(messageReplyLength(from.length, bodyEnd - bodyStart));
    const start = this.#bytes.length;
    this.#end(start, writeMessageReplyBytes(buffer, start, from, source, bodyStart, bodyEnd));
  }

  aborted(): void {
    this.#push(ABORTED);
  }

  /** The batch; the writer starts afresh. */
  take(): Buffer {
    const count = this.#count;
    const bytes = this.#bytes;
    const buffer = bytes.reserve(4 * count + 4);
    let at = bytes.length;
    const lengths = this.#lengths;
    for (let i = 0; i < count; i++) {
      buffer.writeUInt32LE(lengths[i] as number, at);
      at += 4;
    }
    buffer.writeUInt32LE(count, at);
    bytes.advance(4 * count + 4);
    this.#count = 0;
    return bytes.take();
  }

  #push(length: number): void {
    if (this.#count === this.#lengths.length) {
      const grown = new Uint32Array(this.#lengths.length * 2);
      grown.set(this.#lengths);
      this.#lengths = grown;
    }
    this.#lengths[this.#count++] = length;
  }
}

/**
 * Walks a reply batch's replies. After next() returns true, either `aborted` is true or
 * the reply's wire bytes are batch[start, end).
 */
export class ReplyReader {
  readonly batch: Buffer;
  /** How many replies the batch holds. */
  readonly count: number;
  aborted = false;
  start = 0;
  end = 0;
  #lengthAt: number;
  #bytesAt = 0;

  constructor(batch: Buffer) {
    this.batch = batch;
    if (batch.length < 4) throw new Error(`a reply batch of ${batch.length} bytes has no count`);
    this.count = batch.readUInt32LE(batch.length - 4);
    this.#lengthAt = batch.length - 4 - 4 * this.count;
    if (this.#lengthAt < 0) throw new Error(`a reply batch of ${batch.length} bytes cannot hold ${this.count} replies`);
  }

  next(): boolean {
    const batch = this.batch;
    const at = this.#lengthAt;
    if (at >= batch.length - 4) return false;
    const length = batch.readUInt32LE(at);
    this.#lengthAt = at + 4;
    this.aborted = length === ABORTED;
    this.start = this.#bytesAt;
    this.end = this.aborted ? this.start : this.start + length;
    if (this.end > batch.length - 4 - 4 * this.count) throw new Error(`reply at offset ${this.start} runs past the batch's replies`);
    this.#bytesAt = this.end;
    return true;
  }
}

// ---- Control messages ---------------------------------------------------------------

/**
 * One more channel to a shard, for another acceptor thread: its own port (batches too
 * big for a ring, or every batch without rings) and its pair of rings. `link` names the
 * acceptor thread's incarnation: it keys the shard's journal beside each batch's seq,
 * since every link numbers its batches from 1.
 */
export interface LinkEnd {
  readonly link: number;
  readonly port: MessagePort;
  readonly rings: RingBuffers | null;
}

/** The link of the thread that calls listen(), whose channel a shard is started with. */
export const MAIN_LINK = 0;

/** Acceptor to shard. */
export type ToShard =
  | Uint8Array
  | { readonly op: 'close' }
  | { readonly op: 'stats' }
  | ({ readonly op: 'attach' } & LinkEnd)
  | { readonly op: 'detach'; readonly link: number };

/** Shard to acceptor. */
export type FromShard =
  | Uint8Array
  | { readonly op: 'ready'; readonly threadId: number; readonly tid: number | null }
  | { readonly op: 'failed'; readonly error: SerializedError }
  | { readonly op: 'stats'; readonly stats: StoreStats | null }
  | { readonly op: 'log'; readonly level: LogLevel; readonly fields: LogFields; readonly message: string };

/** What a shard task receives from the pool when it starts. */
export interface ShardTaskData {
  readonly shardId: number;
  readonly port: MessagePort;
  readonly config: ShardConfig;
  /** The shard's rings for batches, or null when batches travel on the port. */
  readonly rings: RingBuffers | null;
}

/** Where a shard keeps its mailboxes. */
export type StoreConfig =
  | {
      readonly kind: 'memory';
      /** Each shard's share of maxStoreBytes. */
      readonly maxBytes?: number;
    }
  | {
      readonly kind: 'sqlite';
      /** One file per shard, by shard id. */
      readonly files: readonly string[];
      readonly fsync: boolean;
      readonly epoch: number;
      /** Each shard's share of maxStoreBytes. */
      readonly maxBytes?: number;
      readonly dataDir: string;
      /** The disk's watermark and reserve (store/disk-space.ts). */
      readonly disk: DiskSpaceOptions;
    }
  | {
      readonly kind: 'redis';
      /** One Redis (`url`) or a cluster's seed nodes (`cluster`, HOST:PORT each). */
      readonly target: { readonly url: string } | { readonly cluster: readonly string[] };
      /** Replicas that must confirm a batch's writes before MESSAGE SENT; 0 none. */
      readonly waitReplicas: number;
      readonly waitTimeoutMs: number;
      readonly keyPrefix: string;
    };

/** Everything a shard needs to build its store; plain data, so it can be cloned. */
export interface ShardConfig {
  readonly maxMessagesPerUser: number;
  readonly store: StoreConfig;
}
