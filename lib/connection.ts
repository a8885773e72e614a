import type { Socket } from 'node:net';
import { ProtocolError } from './errors.js';
import { dispatch, type Session } from './handlers/index.js';
import { CommandParser } from './protocol/commands.js';
import { LineFramer } from './protocol/framer.js';
import { ReplyQueue } from './reply-queue.js';
import type { ShardRouter } from './shard-router.js';

export interface ConnectionLimits {
  readonly maxLineBytes: number;
  readonly idleTimeoutMs: number;
  readonly maxInFlight: number;
}

// After the server has said its last, it keeps reading (and discarding) for this long
// before closing. Closing a socket with unread input makes the kernel send RST, and a RST
// can make the peer throw away replies it has not read yet.
const LINGER_MS = 2_000;

/**
 * One client socket: frames its bytes into lines, parses them into commands, hands the
 * commands to the handlers, and writes replies in command order. It knows nothing of
 * storage or shards beyond the router.
 *
 * Backpressure: it stops reading while `maxInFlight` commands await replies or while
 * the socket's write buffer is over its high-water mark, so a client that sends without
 * reading holds at most one read chunk and a bounded set of replies in the server.
 */
export class Connection implements Session {
  readonly router: ShardRouter;
  readonly replies: ReplyQueue;
  readonly #socket: Socket;
  readonly #limits: ConnectionLimits;
  readonly #framer: LineFramer;
  readonly #parser = new CommandParser();
  #paused = false;
  // Set once the server has written its last byte: input from then on is discarded.
  #finished = false;

  constructor(socket: Socket, router: ShardRouter, limits: ConnectionLimits, onClose: (connection: Connection) => void) {
    this.#socket = socket;
    this.router = router;
    this.#limits = limits;
    this.#framer = new LineFramer(limits.maxLineBytes);
    this.replies = new ReplyQueue({ write: (replies) => this.#write(replies), end: () => this.#finish() });

    // Replies may still be owed after the peer has finished sending (`printf ... | nc`).
    socket.allowHalfOpen = true;
    socket.setNoDelay(true);
    if (limits.idleTimeoutMs > 0) socket.setTimeout(limits.idleTimeoutMs, () => this.#onIdle());
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    // PROTOCOL: a connection closing mid-line just closes; the partial line never runs.
    socket.on('end', () => this.shutdown());
    socket.on('error', () => {}); // the 'close' that follows cleans up
    socket.on('drain', () => this.#pump());
    socket.once('close', () => onClose(this));
  }

  get user(): Buffer | null {
    return this.#parser.user;
  }

  /** Stops taking commands; closes after the replies already owed. */
  shutdown(): void {
    this.replies.end();
    this.#pause();
  }

  /** Closes at once, dropping anything unsent. */
  destroy(): void {
    this.#socket.destroy();
  }

  #onData(chunk: Buffer): void {
    if (this.#finished || this.replies.ending) return;
    this.#framer.push(chunk);
    this.#pump();
  }

  #pump(): void {
    if (this.replies.ending) return;
    const max = this.#limits.maxInFlight;
    try {
      while (!this.replies.ending) {
        if (this.replies.size >= max || this.#socket.writableNeedDrain) {
          this.#pause();
          return;
        }
        const line = this.#framer.next();
        if (line === null) break;
        const command = this.#parser.feed(line);
        if (command !== null) dispatch(this, command);
      }
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      // PROTOCOL: drop the connection; the commands before the bad line still get their
      // replies, in order, and nothing from it on runs. No error text is sent.
      this.shutdown();
      return;
    }
    if (!this.#framer.hasUnreadBytes && this.#paused && !this.replies.ending) {
      this.#paused = false;
      this.#socket.resume();
    }
  }

  #pause(): void {
    if (this.#paused || this.#finished) return;
    this.#paused = true;
    this.#socket.pause();
  }

  #write(replies: Buffer[]): void {
    const socket = this.#socket;
    if (socket.destroyed) return;
    socket.write(replies.length === 1 ? (replies[0] as Buffer) : Buffer.concat(replies));
    if (this.#paused) this.#pump();
  }

  #finish(): void {
    const socket = this.#socket;
    this.#finished = true;
    if (socket.destroyed) return;
    socket.end(() => {
      // Everything reached the kernel; drain what the peer still sends, then close.
      socket.on('data', () => {});
      socket.resume();
      setTimeout(() => socket.destroy(), LINGER_MS).unref();
    });
  }

  #onIdle(): void {
    // PROTOCOL: a connection that sent nothing for idleTimeout is closed, so a dead peer
    // cannot hold a socket forever. After the last reply it is simply destroyed.
    if (this.#finished) this.#socket.destroy();
    else this.shutdown();
  }
}
