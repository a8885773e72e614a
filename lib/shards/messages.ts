import type { MessagePort } from 'node:worker_threads';
import type { SerializedError } from '../errors.js';
import type { LogFields, LogLevel } from '../logger.js';
import type { DiskSpaceOptions } from '../store/disk-space.js';
import type { StoreStats } from '../store/store.js';
import type { ByteWriter } from '../util/bytes.js';

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
 *   header      u32 seq (1, 2, 3... per shard) | u32 acked (the highest seq whose reply
 *               the acceptor has received; a durable shard may forget replies up to it)
 *               | u32 flags (FLAG_RESENT: sent again after a crash, may be applied already)
 *   OP_COUNT    u8 op | u16 n | user[n]
 *   OP_COMPOSE  u8 op | u16 n | to[n] | u16 m | from[m] | u32 k | body[k]
 *   OP_READ     u8 op | u16 n | user[n]
 * Reply batch: one record per request, in request order (so no request ids are needed):
 *   u32 n | the reply's exact wire bytes[n]
 *   u32 ABORTED   no answer can be given: the acceptor drops the connection
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
  writer.u8(OP_COUNT);
  writer.shortBytes(user);
}

/** COMPOSE's record; the message is body[start, end). */
export function writeCompose(writer: ByteWriter, to: Uint8Array, from: Uint8Array, body: Buffer, start: number, end: number): void {
  writer.u8(OP_COMPOSE);
  writer.shortBytes(to);
  writer.shortBytes(from);
  writer.u32(end - start);
  writer.range(body, start, end);
}

export function writeRead(writer: ByteWriter, user: Uint8Array): void {
  writer.u8(OP_READ);
  writer.shortBytes(user);
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

// ---- Reply batches ------------------------------------------------------------------

/** A reply record: the reply's wire bytes. */
export function writeReply(writer: ByteWriter, wire: Uint8Array): void {
  writer.u32(wire.length);
  writer.bytes(wire);
}

/**
 * Room for a reply record of at most `maxLength` wire bytes, to be written in place at
 * the returned offset of `writer.reserve()`'s buffer; finish it with endReply().
 */
export function beginReply(writer: ByteWriter, maxLength: number): number {
  writer.reserve(4 + maxLength);
  return writer.length + 4;
}

/** Closes a record begun with beginReply() at `start`, whose wire bytes end at `end`. */
export function endReply(writer: ByteWriter, start: number, end: number): void {
  writer.reserve(0).writeUInt32LE(end - start, start - 4);
  writer.advance(end - start + 4);
}

/** A record saying this request has no answer: its connection must be dropped. */
export function writeAborted(writer: ByteWriter): void {
  writer.u32(ABORTED);
}

/**
 * Walks a reply batch's records. After next() returns true, either `aborted` is true or
 * the reply's wire bytes are batch[start, end).
 */
export class ReplyReader {
  readonly batch: Buffer;
  aborted = false;
  start = 0;
  end = 0;
  #offset = 0;

  constructor(batch: Buffer) {
    this.batch = batch;
  }

  next(): boolean {
    const batch = this.batch;
    const at = this.#offset;
    if (at >= batch.length) return false;
    const length = batch.readUInt32LE(at);
    this.aborted = length === ABORTED;
    this.start = at + 4;
    this.end = this.aborted ? this.start : this.start + length;
    if (this.end > batch.length) throw new Error(`reply record at offset ${at} runs past the batch's end`);
    this.#offset = this.end;
    return true;
  }
}

// ---- Control messages ---------------------------------------------------------------

/** Acceptor to shard. */
export type ToShard = Uint8Array | { readonly op: 'close' } | { readonly op: 'stats' };

/** Shard to acceptor. */
export type FromShard =
  | Uint8Array
  | { readonly op: 'ready'; readonly threadId: number }
  | { readonly op: 'failed'; readonly error: SerializedError }
  | { readonly op: 'stats'; readonly stats: StoreStats | null }
  | { readonly op: 'log'; readonly level: LogLevel; readonly fields: LogFields; readonly message: string };

/** What a shard task receives from the pool when it starts. */
export interface ShardTaskData {
  readonly shardId: number;
  readonly port: MessagePort;
  readonly config: ShardConfig;
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
