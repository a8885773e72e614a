import type { Socket } from 'node:net';
import { performance, type RecordableHistogram } from 'node:perf_hooks';
import type { BodyCodec } from './body.js';
import { KIND_COMPOSE, KIND_LOGIN, KIND_READ, NEED_MORE, REPLY_COUNT, REPLY_EMPTY, REPLY_FAILED, REPLY_MESSAGE, REPLY_SENT, type ReplyParser } from './reply.js';
import { type LoadShape, OUTCOME_FAILED, OUTCOME_SENT, PHASE_MEASURE, PHASE_STOP, type RunCounts, type WindowCounts } from './types.js';
import { openSocket } from './socket.js';
import type { Verifier } from './verify.js';

// A peer that sends bytes which never complete a reply could otherwise grow the buffer forever.
const MAX_BUFFERED = 4 * 1024 * 1024;

/** What the connections of one generator thread share. */
export interface LoadContext {
  readonly shape: LoadShape;
  readonly parser: ReplyParser;
  readonly codec: BodyCodec;
  readonly verifier: Verifier;
  readonly histogram: RecordableHistogram;
  readonly phase: Int32Array;
  readonly window: WindowCounts;
  readonly run: RunCounts;
  /** COMPOSE head bytes by recipient index, and the tail after the body. */
  readonly composeHeads: readonly Buffer[];
  readonly composeTail: Buffer;
  readonly usedRecipients: Uint8Array;
  /** Where sockets read into (net's `onread`): one per thread, reused, so reading allocates nothing. */
  readonly readBuffer: Buffer;
  /** Called once per connection when it is done: stopped with nothing outstanding, or closed. */
  readonly onDone: (connection: LoadConnection) => void;
}

/**
 * One generator connection: logs in as its own user, then keeps `pipeline` commands
 * outstanding (a closed loop), writing each refill as one buffer and parsing replies in
 * place. Every reply is checked; a wrong one drops the connection, since what follows it
 * can no longer be matched to commands.
 */
export class LoadConnection {
  readonly index: number;
  /** COMPOSE fates by sequence number (OUTCOME_*). */
  outcomes = new Uint8Array(1024);
  nextSeq = 0;
  readonly #ctx: LoadContext;
  readonly #socket: Socket;
  readonly #connected: 'connect' | 'secureConnect';
  readonly #readCommand: Buffer;
  readonly #lastSeq: Int32Array;
  // Outstanding commands, a ring of `capacity` slots.
  readonly #capacity: number;
  readonly #kinds: Uint8Array;
  readonly #seqs: Int32Array;
  readonly #recipients: Int32Array;
  readonly #sentAt: Float64Array;
  #head = 0;
  #outstanding = 0;
  #pending: Buffer | null = null;
  #random: number;
  #loggedIn = false;
  #done = false;
  #onLogin: ((error: Error | null) => void) | null = null;

  constructor(ctx: LoadContext, index: number, readCommand: Buffer) {
    this.#ctx = ctx;
    this.index = index;
    this.#readCommand = readCommand;
    this.#lastSeq = new Int32Array(ctx.shape.connections).fill(-1);
    this.#capacity = Math.max(1, ctx.shape.pipeline);
    this.#kinds = new Uint8Array(this.#capacity);
    this.#seqs = new Int32Array(this.#capacity);
    this.#recipients = new Int32Array(this.#capacity);
    this.#sentAt = new Float64Array(this.#capacity);
    // xorshift32 seeded by the index: the same command sequence on every run.
    this.#random = Math.imul(index + 1, 0x9e3779b1) || 1;
    // With several nodes, connection i goes to node i mod N.
    const port = ctx.shape.ports?.[index % ctx.shape.ports.length] ?? ctx.shape.port;
    const { socket, connected } = openSocket(ctx.shape, port, (chunk) => this.#onData(chunk), ctx.readBuffer);
    this.#socket = socket;
    this.#connected = connected;
    this.#socket.on('error', (err) => this.#onClose(err));
    this.#socket.on('close', () => this.#onClose(null));
  }

  /** Connects and logs in (when the protocol has a login); resolves when ready to start. */
  open(login: Buffer | null): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#onLogin = (error) => (error === null ? resolve() : reject(error));
      if (login === null) {
        this.#socket.once(this.#connected, () => {
          this.#loggedIn = true;
          this.#settleLogin(null);
        });
      } else {
        this.#push(KIND_LOGIN, 0, 0, performance.now());
        this.#socket.write(login);
      }
    });
  }

  /** Fills the pipeline; from then on each batch of replies triggers the next batch. */
  start(): void {
    if (!this.#done) this.#refill();
  }

  /** Called when the phase turns to stop, for a connection that may be idle. */
  checkDone(): void {
    if (this.#outstanding === 0) this.#finish();
  }

  /** Drops the connection; whatever is outstanding is counted missing. */
  abort(): void {
    if (this.#done) return;
    if (this.#outstanding > 0) this.#ctx.verifier.errors.add('missingReply', () => `connection ${this.index}: no reply to ${this.#outstanding} command(s) in time`, this.#outstanding);
    this.#outstanding = 0;
    this.#finish();
    this.#socket.destroy();
  }

  #settleLogin(error: Error | null): void {
    const settle = this.#onLogin;
    this.#onLogin = null;
    settle?.(error);
  }

  #next(): number {
    let x = this.#random;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#random = x;
    // In [0, 1).
    return (x >>> 0) / 4294967296;
  }

  #push(kind: number, seq: number, recipient: number, now: number): void {
    const slot = (this.#head + this.#outstanding) % this.#capacity;
    this.#kinds[slot] = kind;
    this.#seqs[slot] = seq;
    this.#recipients[slot] = recipient;
    this.#sentAt[slot] = now;
    this.#outstanding++;
  }

  #refill(): void {
    const ctx = this.#ctx;
    const { shape, codec, composeHeads } = ctx;
    const want = this.#capacity - this.#outstanding;
    if (want <= 0) return;
    const now = performance.now();
    const first = this.#outstanding;
    let bytes = 0;
    for (let i = 0; i < want; i++) {
      if (this.#next() < shape.composeShare) {
        const recipient = this.#pickRecipient();
        const seq = this.nextSeq++;
        if (seq >= this.outcomes.length) {
          const grown = new Uint8Array(this.outcomes.length * 2);
          grown.set(this.outcomes);
          this.outcomes = grown;
        }
        ctx.usedRecipients[recipient] = 1;
        bytes += (composeHeads[recipient] as Buffer).length + codec.length(this.index, seq, recipient) + ctx.composeTail.length;
        this.#push(KIND_COMPOSE, seq, recipient, now);
      } else {
        bytes += this.#readCommand.length;
        this.#push(KIND_READ, 0, 0, now);
      }
    }
    // A fresh buffer per batch: the socket may still hold the previous one.
    const out = Buffer.allocUnsafe(bytes);
    let off = 0;
    for (let i = first; i < first + want; i++) {
      const slot = (this.#head + i) % this.#capacity;
      if (this.#kinds[slot] === KIND_COMPOSE) {
        const recipient = this.#recipients[slot] as number;
        off += (composeHeads[recipient] as Buffer).copy(out, off);
        off = codec.write(out, off, this.index, this.#seqs[slot] as number, recipient);
        off += ctx.composeTail.copy(out, off);
      } else {
        off += this.#readCommand.copy(out, off);
      }
    }
    this.#socket.write(out);
  }

  // Readers (the connections' own users) get `toReaders` of the COMPOSEs so READs find
  // messages; the wider users get the rest and are only emptied by the final drain.
  #pickRecipient(): number {
    const { connections, users, toReaders } = this.#ctx.shape;
    if (users === 0 || this.#next() < toReaders) return Math.floor(this.#next() * connections);
    return connections + Math.floor(this.#next() * users);
  }

  #onData(chunk: Buffer): void {
    if (this.#done) return;
    const ctx = this.#ctx;
    const now = performance.now();
    const phase = Atomics.load(ctx.phase, 0);
    const measuring = phase === PHASE_MEASURE;
    const parser = ctx.parser;
    let buf = chunk;
    if (this.#pending !== null) {
      // Only a reply cut by a read boundary takes this copy.
      buf = Buffer.concat([this.#pending, chunk]);
      this.#pending = null;
    }
    let pos = 0;
    while (pos < buf.length) {
      if (this.#outstanding === 0) {
        this.#wrong(`${buf.length - pos} byte(s) that answer no command: ${JSON.stringify(buf.toString('latin1', pos, Math.min(buf.length, pos + 60)))}`);
        return;
      }
      const slot = this.#head;
      const kind = this.#kinds[slot] as number;
      const next = parser.parse(buf, pos, kind);
      if (next === NEED_MORE) break;
      const reply = parser.reply;
      if (kind === KIND_COMPOSE) {
        const seq = this.#seqs[slot] as number;
        if (reply === REPLY_SENT) this.outcomes[seq] = OUTCOME_SENT;
        else if (reply === REPLY_FAILED) this.outcomes[seq] = OUTCOME_FAILED;
        else return this.#wrong(`COMPOSE answered ${describe(buf, pos, next)}`);
        ctx.run.composeReplies++;
        if (reply === REPLY_SENT) ctx.run.sent++;
        else ctx.run.failed++;
        if (measuring) {
          ctx.window.composes++;
          if (reply === REPLY_FAILED) ctx.window.failed++;
        }
      } else if (kind === KIND_READ) {
        if (reply === REPLY_MESSAGE) {
          ctx.verifier.checkRead(buf, parser.senderStart, parser.senderEnd, parser.bodyStart, parser.bodyEnd, this.index, this.#lastSeq);
          ctx.run.readHits++;
          if (measuring) ctx.window.readHits++;
        } else if (reply !== REPLY_EMPTY) {
          return this.#wrong(`READ answered ${describe(buf, pos, next)}`);
        }
        ctx.run.reads++;
        if (measuring) ctx.window.reads++;
      } else {
        if (reply !== REPLY_COUNT) return this.#wrong(`LOGIN answered ${describe(buf, pos, next)}`);
        // The run's user names are new, so their mailboxes must be empty.
        if (parser.count !== 0) ctx.verifier.errors.add('loginCount', () => `LOGIN of a new user answered ${parser.count}`);
        this.#loggedIn = true;
      }
      if (measuring && kind !== KIND_LOGIN) {
        const ns = Math.round((now - (this.#sentAt[slot] as number)) * 1e6);
        ctx.histogram.record(ns > 0 ? ns : 1);
      }
      this.#head = (slot + 1) % this.#capacity;
      this.#outstanding--;
      pos = next;
    }
    if (pos < buf.length) {
      if (buf.length - pos > MAX_BUFFERED) return this.#wrong(`over ${MAX_BUFFERED} bytes without a complete reply`);
      // A copy: the read buffer is reused by the next read of any connection of this thread.
      this.#pending = Buffer.from(buf.subarray(pos));
    }
    if (this.#onLogin !== null) {
      if (this.#loggedIn && this.#outstanding === 0) this.#settleLogin(null);
      return;
    }
    if (phase >= PHASE_STOP) {
      if (this.#outstanding === 0) this.#finish();
    } else {
      this.#refill();
    }
  }

  #wrong(detail: string): void {
    const ctx = this.#ctx;
    ctx.verifier.errors.add('wrongReply', () => `connection ${this.index}: ${detail}`);
    // What follows cannot be matched to commands any more: give up on this connection.
    ctx.run.abandoned += this.#outstanding - 1;
    this.#outstanding = 0;
    this.#settleLogin(new Error(`connection ${this.index}: ${detail}`));
    this.#finish();
    this.#socket.destroy();
  }

  #onClose(error: Error | null): void {
    if (this.#done) return;
    const ctx = this.#ctx;
    const why = error === null ? 'the server closed the connection' : error.message;
    if (this.#outstanding > 0) {
      ctx.verifier.errors.add('missingReply', () => `connection ${this.index}: ${why} with ${this.#outstanding} command(s) unanswered`, this.#outstanding);
    } else {
      ctx.verifier.errors.add('connection', () => `connection ${this.index}: ${why}`);
    }
    this.#outstanding = 0;
    this.#settleLogin(new Error(`connection ${this.index}: ${why}`));
    this.#finish();
    this.#socket.destroy();
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.outcomes = this.outcomes.subarray(0, this.nextSeq);
    this.#socket.end();
    this.#ctx.onDone(this);
  }
}

function describe(buf: Buffer, start: number, end: number): string {
  return JSON.stringify(buf.toString('latin1', start, Math.min(end, start + 80)));
}
