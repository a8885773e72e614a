// A raw line client for the server's integration tests. It is deliberately not the
// product's client library: it checks nothing, decodes nothing and sends exactly the
// bytes it is given, so tests can break the protocol on purpose and see every byte back.
import { once } from 'node:events';
import { type Socket, connect } from 'node:net';

const LF = 0x0a;

export const HOST = '127.0.0.1';
/**
 * Default wait for one reply. Generous: a first reply may wait for worker threads to start,
 * and the suite shares 2 cores with other test processes. A passing test never waits it out.
 */
export const REPLY_TIMEOUT_MS = 20_000;

/** How the server ended the connection, and what it sent that no read took. */
export interface Closed {
  /** 'end': the server sent FIN; 'reset': the socket errored or closed without a FIN. */
  readonly how: 'end' | 'reset';
  /** Bytes received that no read took (empty when nothing more came). */
  readonly trailing: Buffer;
}

interface Waiter {
  check(): boolean;
}

export class LineClient {
  readonly socket: Socket;
  #buffer: Buffer = Buffer.alloc(0);
  #closed: Closed['how'] | null = null;
  #bytesReceived = 0;
  readonly #waiters = new Set<Waiter>();

  constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#bytesReceived += chunk.length;
      this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
      this.#wake();
    });
    socket.on('end', () => this.#markClosed('end'));
    socket.on('error', () => this.#markClosed('reset'));
    socket.on('close', () => this.#markClosed('reset'));
  }

  static async connect(port: number, host: string = HOST): Promise<LineClient> {
    const socket = connect({ port, host, noDelay: true });
    await once(socket, 'connect');
    return new LineClient(socket);
  }

  /** Whether the server has closed the connection. */
  get closed(): boolean {
    return this.#closed !== null;
  }

  /** Every byte received so far, read or not. */
  get bytesReceived(): number {
    return this.#bytesReceived;
  }

  /** Bytes received and not yet taken by a read. */
  get buffered(): Buffer {
    return this.#buffer;
  }

  /** Writes raw bytes (a string is sent as UTF-8); resolves once handed to the kernel. */
  send(data: string | Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.write(data, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Half-closes: sends FIN, keeps reading. */
  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Stops reading, so the kernel buffers fill and TCP pushes back on the server. */
  pauseReading(): void {
    this.socket.pause();
  }

  resumeReading(): void {
    this.socket.resume();
  }

  /** The next LF-terminated line without its LF (a CR before it is kept: raw bytes). */
  readLine(timeoutMs: number = REPLY_TIMEOUT_MS): Promise<Buffer> {
    return this.#take(timeoutMs, 'a line', () => {
      const lf = this.#buffer.indexOf(LF);
      if (lf === -1) return null;
      const line = this.#buffer.subarray(0, lf);
      this.#buffer = this.#buffer.subarray(lf + 1);
      return line;
    });
  }

  /** The next `n` lines (as strings decoded latin1, byte for byte). */
  async lines(n: number, timeoutMs: number = REPLY_TIMEOUT_MS): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push((await this.readLine(Math.max(1, deadline - Date.now()))).toString('latin1'));
    return out;
  }

  /** Exactly the next `n` bytes. */
  readBytes(n: number, timeoutMs: number = REPLY_TIMEOUT_MS): Promise<Buffer> {
    return this.#take(timeoutMs, `${n} bytes`, () => {
      if (this.#buffer.length < n) return null;
      const bytes = this.#buffer.subarray(0, n);
      this.#buffer = this.#buffer.subarray(n);
      return bytes;
    });
  }

  /** Resolves once the server has closed the connection; rejects if it is still open at the deadline. */
  waitClosed(timeoutMs: number = REPLY_TIMEOUT_MS): Promise<Closed> {
    return this.#wait(timeoutMs, 'the connection to close', () => {
      if (this.#closed === null) return null;
      return { how: this.#closed, trailing: this.#buffer };
    });
  }

  #take(timeoutMs: number, what: string, take: () => Buffer | null): Promise<Buffer> {
    return this.#wait(timeoutMs, what, () => {
      const got = take();
      if (got !== null) return got;
      if (this.#closed !== null) {
        throw new Error(`connection closed (${this.#closed}) while waiting for ${what}; unread: ${JSON.stringify(this.#buffer.toString('latin1'))}`);
      }
      return null;
    });
  }

  #wait<T>(timeoutMs: number, what: string, attempt: () => T | null): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter = {
        check: () => {
          let value: T | null;
          try {
            value = attempt();
          } catch (err) {
            finish();
            reject(err);
            return true;
          }
          if (value === null) return false;
          finish();
          resolve(value);
          return true;
        },
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; unread: ${JSON.stringify(this.#buffer.toString('latin1').slice(0, 200))}`));
      }, timeoutMs);
      const finish = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
      };
      if (!waiter.check()) this.#waiters.add(waiter);
    });
  }

  #markClosed(how: Closed['how']): void {
    if (this.#closed !== null) return;
    this.#closed = how;
    this.#wake();
  }

  #wake(): void {
    for (const waiter of [...this.#waiters]) waiter.check();
  }
}

/** Lets the event loop turn; used between tiny writes so each becomes its own segment. */
export function tick(ms = 1): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** One READ reply: the sender and message (latin1, byte for byte), or null for READ ERROR. */
export interface ReadReply {
  readonly from: string;
  readonly body: string;
}

export async function readReply(client: LineClient, timeoutMs: number = REPLY_TIMEOUT_MS): Promise<ReadReply | null> {
  const first = (await client.readLine(timeoutMs)).toString('latin1');
  // PROTOCOL: a username has no space, so READ ERROR cannot be a sender line.
  if (first === 'READ ERROR') return null;
  const body = (await client.readLine(timeoutMs)).toString('latin1');
  return { from: first, body };
}

/** The next `n` READ replies. */
export async function readReplies(client: LineClient, n: number, timeoutMs: number = REPLY_TIMEOUT_MS): Promise<(ReadReply | null)[]> {
  const deadline = Date.now() + timeoutMs;
  const out: (ReadReply | null)[] = [];
  for (let i = 0; i < n; i++) out.push(await readReply(client, Math.max(1, deadline - Date.now())));
  return out;
}

/** `COMPOSE <to>` and its message as wire bytes; a string body is taken as latin1, one byte per char, as `lines()` decodes. */
export function compose(to: string, body: string | Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(`COMPOSE ${to}\n`), typeof body === 'string' ? Buffer.from(body, 'latin1') : body, Buffer.from('\n')]);
}

/** Waits (bounded) until `check()` holds. */
export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = REPLY_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await tick(5);
  }
}
