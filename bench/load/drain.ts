import type { Socket } from 'node:net';
import { userName } from './body.js';
import { commandsFor, parserFor } from './dialect.js';
import { KIND_LOGIN, KIND_READ, NEED_MORE, REPLY_COUNT, REPLY_EMPTY, REPLY_MESSAGE, type ReplyParser } from './reply.js';
import { openSocket } from './socket.js';
import type { LoadShape } from './types.js';
import type { Verifier } from './verify.js';

const CONCURRENCY = 16;
// READs sent per round trip while draining one mailbox.
const BATCH = 256;

export interface DrainOptions {
  readonly timeoutMs: number;
}

/**
 * Empties every given mailbox through the server, checking each message like the load
 * does: log in (pigeonhole) or LLEN (Redis) to learn the count, then READ until the
 * mailbox answers empty. The count must match what was read. Returns messages read.
 */
export async function drain(shape: LoadShape, verifier: Verifier, recipients: readonly number[], options: DrainOptions): Promise<number> {
  const deadline = Date.now() + options.timeoutMs;
  let next = 0;
  let total = 0;
  const lane = async (): Promise<void> => {
    while (next < recipients.length) {
      const recipient = recipients[next++] as number;
      if (Date.now() > deadline) {
        verifier.errors.add('missingReply', () => `drain did not finish within ${options.timeoutMs} ms`);
        next = recipients.length;
        return;
      }
      const drained = await drainOne(shape, verifier, recipient, deadline);
      total += drained;
    }
  };
  const lanes: Promise<void>[] = [];
  for (let i = 0; i < Math.min(CONCURRENCY, recipients.length); i++) lanes.push(lane());
  await Promise.all(lanes);
  return total;
}

async function drainOne(shape: LoadShape, verifier: Verifier, recipient: number, deadline: number): Promise<number> {
  const commands = commandsFor(shape.dialect);
  const user = userName(shape.prefix, shape.connections, recipient);
  const client = new DrainClient(shape, parserFor(shape.dialect), verifier, recipient, deadline);
  try {
    await client.connected;
    const expected = await client.count(commands.count(user));
    let read = 0;
    const readCommand = commands.read(user);
    for (;;) {
      // Ask for what the count says is left and one more, which must come back empty.
      const batch = Math.min(BATCH, Math.max(1, expected - read + 1));
      const { messages, empty } = await client.read(readCommand, batch);
      read += messages;
      if (empty) break;
      // A server that never empties the mailbox must not keep the drain going.
      if (read > expected) {
        verifier.errors.add('loginCount', () => `${user}: the count said ${expected} message(s), READ returned more and more`);
        return read;
      }
      if (Date.now() > deadline) throw new Error(`mailbox ${user} still not empty at the drain deadline`);
    }
    if (read !== expected) verifier.errors.add('loginCount', () => `${user}: the count said ${expected} message(s), READ returned ${read}`);
    return read;
  } catch (err) {
    verifier.errors.add(err instanceof WrongReplyError ? 'wrongReply' : 'missingReply', () => `drain of ${user}: ${err instanceof Error ? err.message : String(err)}`);
    return 0;
  } finally {
    client.close();
  }
}

class WrongReplyError extends Error {
  override name = 'WrongReplyError';
}

/**
 * One drain connection: sends a batch, resolves when every reply of it is in, and fails
 * at the drain's deadline when they are not (a server that stopped answering must not
 * hold the run for ever).
 */
class DrainClient {
  readonly connected: Promise<void>;
  readonly #socket: Socket;
  readonly #parser: ReplyParser;
  readonly #verifier: Verifier;
  readonly #recipient: number;
  readonly #lastSeq: Int32Array;
  #pending: Buffer | null = null;
  #kind = KIND_READ;
  #expected = 0;
  #messages = 0;
  #empty = false;
  #count = 0;
  #settle: ((error: Error | null) => void) | null = null;
  readonly #timer: NodeJS.Timeout;

  constructor(shape: LoadShape, parser: ReplyParser, verifier: Verifier, recipient: number, deadline: number) {
    this.#parser = parser;
    this.#verifier = verifier;
    this.#recipient = recipient;
    this.#lastSeq = new Int32Array(shape.connections).fill(-1);
    const { socket, connected } = openSocket(shape, shape.port, (chunk) => this.#onData(chunk));
    this.#socket = socket;
    this.connected = new Promise((resolve, reject) => {
      this.#socket.once(connected, () => resolve());
      this.#settle = (error) => (error === null ? resolve() : reject(error));
    });
    this.#socket.on('error', (err) => this.#fail(err));
    this.#socket.on('close', () => this.#fail(new Error('the server closed the connection')));
    this.#timer = setTimeout(() => this.#fail(new Error('no answer by the drain deadline')), Math.max(0, deadline - Date.now()));
  }

  async count(command: Buffer): Promise<number> {
    await this.#send(command, KIND_LOGIN, 1);
    return this.#count;
  }

  async read(command: Buffer, n: number): Promise<{ messages: number; empty: boolean }> {
    const batch = Buffer.allocUnsafe(command.length * n);
    for (let i = 0; i < n; i++) command.copy(batch, i * command.length);
    this.#messages = 0;
    this.#empty = false;
    await this.#send(batch, KIND_READ, n);
    return { messages: this.#messages, empty: this.#empty };
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#settle = null;
    this.#socket.destroy();
  }

  #send(bytes: Buffer, kind: number, replies: number): Promise<void> {
    this.#kind = kind;
    this.#expected = replies;
    return new Promise((resolve, reject) => {
      this.#settle = (error) => (error === null ? resolve() : reject(error));
      this.#socket.write(bytes);
    });
  }

  #onData(chunk: Buffer): void {
    const buf = this.#pending === null ? chunk : Buffer.concat([this.#pending, chunk]);
    this.#pending = null;
    const parser = this.#parser;
    let pos = 0;
    while (pos < buf.length) {
      if (this.#expected === 0) return this.#fail(new WrongReplyError('bytes that answer no command'));
      const next = parser.parse(buf, pos, this.#kind);
      if (next === NEED_MORE) break;
      const reply = parser.reply;
      if (this.#kind === KIND_LOGIN) {
        if (reply !== REPLY_COUNT) return this.#fail(new WrongReplyError(`count answered ${JSON.stringify(buf.toString('latin1', pos, Math.min(next, pos + 80)))}`));
        this.#count = parser.count;
      } else if (reply === REPLY_MESSAGE) {
        this.#verifier.checkRead(buf, parser.senderStart, parser.senderEnd, parser.bodyStart, parser.bodyEnd, this.#recipient, this.#lastSeq);
        this.#messages++;
      } else if (reply === REPLY_EMPTY) {
        this.#empty = true;
      } else {
        return this.#fail(new WrongReplyError(`READ answered ${JSON.stringify(buf.toString('latin1', pos, Math.min(next, pos + 80)))}`));
      }
      this.#expected--;
      pos = next;
    }
    if (pos < buf.length) this.#pending = buf.subarray(pos);
    if (this.#expected === 0) {
      const settle = this.#settle;
      this.#settle = null;
      settle?.(null);
    }
  }

  #fail(error: Error): void {
    const settle = this.#settle;
    this.#settle = null;
    this.#socket.destroy();
    settle?.(error);
  }
}
