import { type Socket, connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { ClientClosedError, ClientError } from '../errors.js';
import { isValidUsername } from '../protocol/username.js';
import { TLS_MIN_VERSION } from '../tls/version.js';
import { showAddress } from '../util/remote-address.js';
import { PendingQueue } from './pending.js';
import { tlsFailure } from './tls-errors.js';
import {
  type ConnectOptions,
  type ResolvedConnectOptions,
  checkLoggedIn,
  checkNotLoggedIn,
  messageBytes,
  resolveConnectOptions,
  usernameBytes,
} from './options.js';

export type { ConnectOptions } from './options.js';

/** A message handed out by READ. */
export interface ReadResult {
  /** The sender's username. */
  from: string;
  /** The message decoded as UTF-8 (bytes that are not UTF-8 become U+FFFD). */
  message: string;
  /** The message exactly as stored, byte for byte. */
  raw: Buffer;
}

/**
 * Where a client stands:
 *   'ready'    connected; calls are sent at once and pipeline
 *   'exiting'  exit() sent EXIT: earlier calls still get their replies, new calls are refused
 *   'closed'   the socket is gone (exit() done, close(), a drop by the server, a timeout or a
 *              reply the protocol does not allow): every call rejects with ClientClosedError
 */
export type ClientStatus = 'ready' | 'exiting' | 'closed';

type Pending =
  | { kind: 'login'; resolve: (count: number) => void; reject: (err: Error) => void }
  | { kind: 'compose'; resolve: (sent: boolean) => void; reject: (err: Error) => void }
  | { kind: 'read'; resolve: (result: ReadResult | null) => void; reject: (err: Error) => void; from: string | null }
  | { kind: 'exit'; resolve: () => void; reject: (err: Error) => void };

const LF = 0x0a;
const LINE_MESSAGE_SENT = 'MESSAGE SENT';
const LINE_MESSAGE_FAILED = 'MESSAGE FAILED';
const LINE_READ_ERROR = 'READ ERROR';
const EXIT_LINE = Buffer.from('EXIT\n');
const READ_LINE = Buffer.from('READ\n');
// LOGIN's count: the server keeps at most 2^32 - 1 messages per mailbox.
const COUNT = /^(?:0|[1-9][0-9]{0,9})$/;

/**
 * A connection to a pigeonhole server. Calls write their command at once and return a
 * promise; they may be issued without awaiting the previous one, and resolve in order.
 * A call the protocol would not allow rejects with a ClientError and sends nothing.
 */
export class Client {
  readonly host: string;
  readonly port: number;
  readonly maxLineBytes: number;
  /**
   * Settles when the connection has closed: with null when this side ended it (exit(),
   * close()), with the ClientClosedError saying why otherwise. It never rejects.
   */
  readonly closed: Promise<ClientClosedError | null>;
  readonly #socket: Socket;
  readonly #pending: PendingQueue<Pending>;
  #status: ClientStatus = 'ready';
  // Set when login() is called, not when it is answered, so `login(); compose()` pipelines.
  #loggedIn = false;
  readonly #overTls: boolean;
  // Set by the first byte from the server.
  #answered = false;
  #held: Buffer[] = [];
  #heldBytes = 0;
  #settleClosed!: (reason: ClientClosedError | null) => void;

  /** @internal use connect() */
  constructor(socket: Socket, options: ResolvedConnectOptions) {
    this.#socket = socket;
    this.host = options.host;
    this.port = options.port;
    this.maxLineBytes = options.maxLineBytes;
    this.#overTls = options.tls !== null;
    this.closed = new Promise((resolve) => (this.#settleClosed = resolve));
    this.#pending = new PendingQueue<Pending>(options.timeoutMs, (err) => {
      this.#shut(new ClientClosedError('the connection was closed because the server did not answer in time', { cause: err }));
    });
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('end', () => this.#shut(new ClientClosedError(`the server at ${this.#where()} closed the connection${this.#closeHint()}`)));
    socket.on('error', (err) => {
      // Over TLS 1.3 a server that refuses this client's certificate says so only now.
      const tls = tlsFailure(err, this.#where());
      if (tls !== null) this.#shut(new ClientClosedError(`the connection to ${this.#where()} was closed: ${tls.message}`, { cause: tls }));
      else this.#shut(new ClientClosedError(`the connection to ${this.#where()} failed: ${err.message}`, { cause: err }));
    });
    socket.on('close', () => this.#shut(new ClientClosedError(`the connection to ${this.#where()} closed`)));
  }

  get status(): ClientStatus {
    return this.#status;
  }

  /** Commands sent and not yet answered. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /** LOGIN: resolves with the number of messages waiting for this user. */
  login(user: string): Promise<number> {
    return this.#call<number>((resolve, reject) => {
      checkNotLoggedIn(this.#loggedIn);
      const name = usernameBytes(user, 'username');
      this.#loggedIn = true;
      this.#send({ kind: 'login', resolve, reject }, Buffer.concat([Buffer.from('LOGIN '), name, Buffer.from('\n')]));
    });
  }

  /** COMPOSE: true when the server stored it (MESSAGE SENT), false on MESSAGE FAILED (mailbox full). */
  compose(to: string, message: string | Uint8Array): Promise<boolean> {
    return this.#call<boolean>((resolve, reject) => {
      checkLoggedIn(this.#loggedIn, 'compose');
      const name = usernameBytes(to, 'recipient');
      const body = messageBytes(message, this.maxLineBytes);
      this.#send({ kind: 'compose', resolve, reject }, Buffer.concat([Buffer.from('COMPOSE '), name, Buffer.from('\n'), body, Buffer.from('\n')]));
    });
  }

  /** READ: the oldest message waiting (and removed from the server), or null when there is none. */
  read(): Promise<ReadResult | null> {
    return this.#call<ReadResult | null>((resolve, reject) => {
      checkLoggedIn(this.#loggedIn, 'read');
      this.#send({ kind: 'read', resolve, reject, from: null }, READ_LINE);
    });
  }

  /**
   * EXIT: resolves once the server has closed the connection, after the replies to every
   * earlier call. Calls made from now on are refused.
   */
  exit(): Promise<void> {
    return this.#call<void>((resolve, reject) => {
      this.#send({ kind: 'exit', resolve, reject }, EXIT_LINE);
      this.#status = 'exiting';
    });
  }

  /** Destroys the connection at once; pending calls reject with ClientClosedError. */
  close(): void {
    this.#shut(null);
  }

  // A server that requires client certificates ends a connection whose certificate it does
  // not trust right after the handshake, with no word (Node sends no TLS alert for it).
  #closeHint(): string {
    if (!this.#overTls || this.#answered) return '';
    return ' before answering anything: over TLS that is how a server that requires client certificates refuses one not signed by its CA, or a LOGIN other than the name in the certificate';
  }

  #where(): string {
    return showAddress(this.host, this.port);
  }

  #call<T>(start: (resolve: (value: T) => void, reject: (err: Error) => void) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.#status !== 'ready') {
        const why = this.#status === 'exiting' ? 'exit() was called' : 'it is closed';
        reject(new ClientClosedError(`cannot send: the connection to ${this.#where()} is not usable (${why})`));
        return;
      }
      start(resolve, reject);
    });
  }

  #send(command: Pending, bytes: Buffer): void {
    this.#pending.push(command);
    this.#socket.write(bytes);
  }

  #onData(chunk: Buffer): void {
    if (this.#status === 'closed') return;
    this.#answered = true;
    this.#pending.progress();
    let start = 0;
    while (start < chunk.length) {
      const lf = chunk.indexOf(LF, start);
      if (lf === -1) {
        this.#hold(chunk.subarray(start));
        return;
      }
      let line: Buffer;
      if (this.#heldBytes === 0) {
        line = chunk.subarray(start, lf);
      } else {
        this.#held.push(chunk.subarray(start, lf));
        line = Buffer.concat(this.#held);
        this.#held = [];
        this.#heldBytes = 0;
      }
      if (line.length > this.maxLineBytes) {
        this.#unexpected(`a reply line of ${line.length} bytes, longer than maxLineBytes (${this.maxLineBytes})`);
        return;
      }
      start = lf + 1;
      this.#onLine(line);
      // #onLine may have shut the connection (the getter dodges TS narrowing of #status).
      if (this.status === 'closed') return;
    }
  }

  // Bytes of an unfinished reply line wait for the rest, up to the line limit: a server
  // can never send a longer line, so more means something is wrong, not "wait longer".
  #hold(piece: Buffer): void {
    this.#heldBytes += piece.length;
    if (this.#heldBytes > this.maxLineBytes) {
      this.#unexpected(`a reply line longer than maxLineBytes (${this.maxLineBytes})`);
      return;
    }
    this.#held.push(piece);
  }

  #onLine(line: Buffer): void {
    const head = this.#pending.head;
    if (head === undefined) {
      this.#unexpected('a reply with no command waiting for one');
      return;
    }
    switch (head.kind) {
      case 'login': {
        const text = line.toString('latin1');
        if (!COUNT.test(text)) return this.#unexpected(`LOGIN answered ${preview(line)}, not a count`);
        this.#pending.shift();
        head.resolve(Number(text));
        return;
      }
      case 'compose': {
        const text = line.toString('latin1');
        if (text !== LINE_MESSAGE_SENT && text !== LINE_MESSAGE_FAILED) {
          return this.#unexpected(`COMPOSE answered ${preview(line)}, not MESSAGE SENT or MESSAGE FAILED`);
        }
        this.#pending.shift();
        head.resolve(text === LINE_MESSAGE_SENT);
        return;
      }
      case 'read': {
        if (head.from === null) {
          const text = line.toString('latin1');
          if (text === LINE_READ_ERROR) {
            this.#pending.shift();
            head.resolve(null);
            return;
          }
          // PROTOCOL: READ ERROR cannot be a sender, since a username has no space.
          if (!isValidUsername(line)) return this.#unexpected(`READ answered ${preview(line)}, neither READ ERROR nor a username`);
          head.from = text;
          return;
        }
        // Copied so the result does not pin the whole socket chunk it arrived in.
        const raw = Buffer.from(line);
        this.#pending.shift();
        head.resolve({ from: head.from, message: raw.toString('utf8'), raw });
        return;
      }
      case 'exit':
        // PROTOCOL: EXIT has no reply; the server just closes.
        return this.#unexpected(`the server sent ${preview(line)} after EXIT instead of closing`);
    }
  }

  #unexpected(what: string): void {
    const err = new ClientError('PH_ERR_CLIENT_UNEXPECTED_REPLY', `unexpected reply from ${this.#where()}: ${what}; the connection is closed`);
    const head = this.#pending.shift();
    head?.reject(err);
    this.#shut(new ClientClosedError('the connection was closed after an unexpected reply', { cause: err }));
  }

  /** Ends the connection for good: `reason` null means this side chose to (close(), exit()). */
  #shut(reason: ClientClosedError | null): void {
    if (this.#status === 'closed') return;
    const exiting = this.#status === 'exiting';
    this.#status = 'closed';
    this.#held = [];
    this.#heldBytes = 0;
    this.#socket.destroy();
    const closedByUs = reason === null;
    const failure = reason ?? new ClientClosedError(`the connection to ${this.#where()} was closed by close()`);
    for (const command of this.#pending.drain()) {
      // EXIT asked for exactly this: the connection closed.
      if (command.kind === 'exit') command.resolve();
      else command.reject(failure);
    }
    // After EXIT the server closing is the expected end, not a failure.
    this.#settleClosed(closedByUs || exiting ? null : failure);
  }
}

function preview(line: Buffer): string {
  const shown = line.subarray(0, 40).toString('latin1');
  return JSON.stringify(line.length > 40 ? `${shown}...` : shown);
}

/** Connects to a pigeonhole server; rejects with PH_ERR_CLIENT_CONNECT_FAILED when it cannot. */
export async function connect(options: ConnectOptions = {}): Promise<Client> {
  const resolved = resolveConnectOptions(options);
  const { host, port, timeoutMs, tls } = resolved;
  const where = showAddress(host, port);
  const socket: Socket = tls === null ? netConnect({ host, port, noDelay: true }) : tlsConnect({ host, port, ...tls, minVersion: TLS_MIN_VERSION });
  if (tls !== null) socket.setNoDelay(true);
  // Over TLS the connection is usable once the handshake is done and the server verified.
  const connected = tls === null ? 'connect' : 'secureConnect';
  await new Promise<void>((resolve, reject) => {
    const fail = (error: ClientError): void => {
      clearTimeout(timer);
      socket.off(connected, onConnect);
      socket.destroy();
      reject(error);
    };
    const failed = (message: string, cause?: unknown): ClientError =>
      new ClientError('PH_ERR_CLIENT_CONNECT_FAILED', `cannot connect to ${where}: ${message}`, { cause });
    const onConnect = (): void => {
      clearTimeout(timer);
      socket.off('error', onError);
      resolve();
    };
    const onError = (err: Error & { code?: string }): void => {
      if (tls === null) return fail(failed(err.message, err));
      // A reset during the handshake is most often a server that does not speak TLS.
      fail(tlsFailure(err, where) ?? failed(`${err.message}${err.code === 'ECONNRESET' ? ' (is the server serving TLS?)' : ''}`, err));
    };
    const timer = setTimeout(() => fail(failed(`no answer within ${timeoutMs} ms (timeoutMs)${tls === null ? '' : '; is the server serving TLS?'}`)), timeoutMs);
    socket.once(connected, onConnect);
    socket.once('error', onError);
  });
  return new Client(socket, resolved);
}
