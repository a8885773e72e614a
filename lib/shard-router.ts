import { ByteWriter } from './byte-writer.js';
import type { ShardError } from './errors.js';
import { REPLY_MESSAGE_FAILED } from './protocol/encode.js';
import type { ShardBackend } from './shard-backend.js';
import { OP_COMPOSE, OP_COUNT, OP_READ, type ShardOp } from './shard-messages.js';
import { RingQueue } from './store/ring-queue.js';

/** Where a shard's answer to one command goes. */
export interface PendingReply {
  readonly op: ShardOp;
  /** The reply's wire bytes (a view into the reply batch). */
  fill(reply: Buffer): void;
  /** The shard was lost before answering: the connection must be dropped. */
  abort(): void;
}

interface Channel {
  readonly writer: ByteWriter;
  // Sent and unsent requests, oldest first. A shard answers a batch in request order,
  // so replies pair with this queue without request ids.
  readonly pending: RingQueue<PendingReply>;
}

/** FNV-1a over the name's bytes: cheap, well spread, and the same in every process. */
export function hashName(name: Uint8Array): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    hash ^= name[i] as number;
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/**
 * Routes each command to the shard that owns its user (COMPOSE: the recipient; LOGIN and
 * READ: the logged-in user) and pairs replies with the commands that asked for them.
 *
 * Commands for one shard gathered during an event-loop turn leave as one batch, in a
 * setImmediate after the turn's I/O callbacks, so many connections share one postMessage.
 */
export class ShardRouter {
  readonly #backend: ShardBackend;
  readonly #channels: Channel[] = [];
  #flushScheduled = false;
  readonly #flush = (): void => this.#sendBatches();

  constructor(backend: ShardBackend) {
    this.#backend = backend;
    for (let i = 0; i < backend.size; i++) this.#channels.push({ writer: new ByteWriter(), pending: new RingQueue() });
  }

  shardFor(name: Uint8Array): number {
    return this.#channels.length === 1 ? 0 : hashName(name) % this.#channels.length;
  }

  /** LOGIN: how many messages wait for `user`. */
  count(user: Buffer, reply: PendingReply): void {
    const channel = this.#enqueue(user, reply);
    channel.writer.u8(OP_COUNT);
    channel.writer.shortBytes(user);
  }

  compose(to: Buffer, from: Buffer, body: Buffer, reply: PendingReply): void {
    const { writer } = this.#enqueue(to, reply);
    writer.u8(OP_COMPOSE);
    writer.shortBytes(to);
    writer.shortBytes(from);
    writer.u32(body.length);
    writer.bytes(body);
  }

  read(user: Buffer, reply: PendingReply): void {
    const channel = this.#enqueue(user, reply);
    channel.writer.u8(OP_READ);
    channel.writer.shortBytes(user);
  }

  /** A shard's reply batch: one length-prefixed record per pending request, in order. */
  onReply(shardId: number, batch: Buffer): void {
    const { pending } = this.#channels[shardId] as Channel;
    let offset = 0;
    while (offset < batch.length) {
      const length = batch.readUInt32LE(offset);
      offset += 4;
      (pending.shift() as PendingReply).fill(batch.subarray(offset, offset + length));
      offset += length;
    }
  }

  /**
   * A shard was lost: nothing it was asked will be answered. A COMPOSE is answered
   * MESSAGE FAILED (the message may not be stored); a LOGIN or READ drops its connection,
   * since any answer could be wrong. Requests not yet sent are dropped with the rest, so
   * the replacement starts with an empty queue.
   */
  onShardDown(shardId: number, _error: ShardError): void {
    const channel = this.#channels[shardId] as Channel;
    if (channel.writer.length > 0) channel.writer.take();
    for (let reply = channel.pending.shift(); reply !== undefined; reply = channel.pending.shift()) {
      if (reply.op === OP_COMPOSE) reply.fill(REPLY_MESSAGE_FAILED);
      else reply.abort();
    }
  }

  #enqueue(name: Buffer, reply: PendingReply): Channel {
    const channel = this.#channels[this.shardFor(name)] as Channel;
    channel.pending.push(reply);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(this.#flush);
    }
    return channel;
  }

  #sendBatches(): void {
    this.#flushScheduled = false;
    for (let shardId = 0; shardId < this.#channels.length; shardId++) {
      const { writer } = this.#channels[shardId] as Channel;
      if (writer.length > 0) this.#backend.send(shardId, writer.take());
    }
  }
}
