import type { Socket } from 'node:net';
import { ProtocolError } from '../errors.js';
import type { Logger } from '../logger.js';
import { dispatch, type Session } from './handlers/index.js';
import { CommandParser } from '../protocol/commands.js';
import { LineFramer } from '../protocol/framer.js';
import { IN_FLIGHT_BUDGET_BYTES, READ_REPLY_OVERHEAD } from './reply-budget.js';
import { readIntoShared } from './read-buffer.js';
import { ReplyQueue } from './reply-queue.js';
import type { Backlog } from './backlog.js';
import type { ShardRouter } from '../shards/router.js';
import type { ConnectionGuard, GuardedConnection } from './connection-guard.js';
import type { SessionCounters } from './counters.js';
import { remoteAddress } from '../util/remote-address.js';

export interface ConnectionLimits {
  readonly maxLineBytes: number;
  readonly idleTimeoutMs: number;
  readonly maxInFlight: number;
}

/** What a connection shares with the server besides the router and its limits. */
export interface ConnectionContext {
  /** The server's limits on connections and unfinished lines, which watches this one. */
  readonly guard: ConnectionGuard;
  readonly counters: SessionCounters;
  /** With client certificates: the certificate's name, the only user it may LOGIN as. */
  readonly identity: Buffer | null;
  readonly logger: Logger;
  /**
   * For a socket the server accepted paused: the read buffer all such connections share
   * (see read-buffer.ts). Null reads through 'data' events (TLS, a host's sockets).
   */
  readonly sharedReadBuffer: Buffer | null;
  /** The bytes in flight on the thread's connections, for fair shares when its shards are backed up. */
  readonly backlog: Backlog;
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
 * Backpressure: it stops reading while `maxInFlight` commands await replies, while the
 * commands in flight could hold IN_FLIGHT_BUDGET_BYTES (queued messages, possible READ
 * replies), or while the socket's write buffer is over its high-water mark. So a client
 * that sends without reading holds at most one read chunk and about
 * IN_FLIGHT_BUDGET_BYTES in the server (one command's worth when a single message is
 * bigger than that).
 */
export class Connection implements Session, GuardedConnection {
  readonly router: ShardRouter;
  readonly replies: ReplyQueue;
  readonly #socket: Socket;
  readonly #limits: ConnectionLimits;
  readonly #framer: LineFramer;
  readonly #parser = new CommandParser();
  readonly maxReadReplyBytes: number;
  readonly identity: Buffer | null;
  readonly counters: SessionCounters;
  readonly logger: Logger;
  readonly remote: string;
  #paused = false;
  // Reads land in the shared buffer, so unread bytes must be copied before a pause.
  readonly #sharedReads: boolean;
  // Set once no more input will be taken (the peer finished sending, or the server is
  // closing): the whole lines already received still run, then the connection closes.
  #draining = false;
  // Set once the server has written its last byte: input from then on is discarded.
  #finished = false;
  // Set by the first idle timeout; the second one destroys the socket.
  #idledOnce = false;
  /**
   * performance.now() when the unfinished line this connection holds began to arrive; 0
   * while it holds none, or while it is not being read (the line cannot finish then, and
   * that is not the peer's doing). The guard's sweep enforces lineTimeoutMs with it.
   */
  lineStartedAt = 0;
  readonly #guard: ConnectionGuard;
  // Unfinished input bytes as last told to the guard.
  #heldReported = 0;
  // Reply bytes the socket held unsent, as last told to the guard.
  #repliesHeld = 0;
  readonly #afterWrite = (): void => this.#accountReplies();

  constructor(socket: Socket, router: ShardRouter, limits: ConnectionLimits, context: ConnectionContext, onClose: (connection: Connection) => void) {
    this.#socket = socket;
    const { guard } = context;
    this.#guard = guard;
    guard.watch(this, socket);
    this.router = router;
    this.identity = context.identity;
    this.counters = context.counters;
    this.logger = context.logger;
    this.remote = remoteAddress(socket);
    this.#limits = limits;
    this.#framer = new LineFramer(limits.maxLineBytes);
    this.maxReadReplyBytes = limits.maxLineBytes + READ_REPLY_OVERHEAD;
    this.replies = new ReplyQueue(
      {
        write: (replies) => this.#write(replies),
        idle: () => socket.writableLength === 0,
        end: () => this.#finish(),
      },
      context.backlog,
    );

    // Replies may still be owed after the peer has finished sending (`printf ... | nc`).
    socket.allowHalfOpen = true;
    socket.setNoDelay(true);
    if (limits.idleTimeoutMs > 0) {
      // A listener of our own: setTimeout(ms, callback) would listen only once.
      socket.setTimeout(limits.idleTimeoutMs);
      socket.on('timeout', () => this.#onIdle());
    }
    const onData = (chunk: Buffer): void => this.#onData(chunk);
    const shared = context.sharedReadBuffer;
    this.#sharedReads = shared !== null && readIntoShared(socket, shared, onData);
    if (!this.#sharedReads) socket.on('data', onData);
    // The peer finished sending (`printf ... | nc -N`): its whole lines are still answered.
    socket.on('end', () => this.shutdown());
    socket.on('error', () => {}); // the 'close' that follows cleans up
    socket.on('drain', () => {
      this.#accountReplies();
      this.#pump();
    });
    socket.once('close', () => {
      this.replies.cancel();
      onClose(this);
    });
    // Accepted paused (pauseOnConnect), so that reads could be set up first.
    socket.resume();
  }

  get user(): Buffer | null {
    return this.#parser.user;
  }

  /**
   * Stops taking input; the whole lines already received still run (in turn, under the
   * usual backpressure), then the connection closes after their replies.
   */
  shutdown(): void {
    if (this.#draining) return;
    this.#draining = true;
    this.#pause();
    this.#pump();
  }

  /** Closes at once, dropping anything unsent; its commands not yet sent to a shard are withdrawn (see ReplyQueue.cancel). */
  destroy(): void {
    // Now, not at the socket's 'close': that comes after this turn's batches have left.
    this.replies.cancel();
    this.#socket.destroy();
  }

  #onData(chunk: Buffer): void {
    if (this.#finished || this.#draining || this.replies.ending) return;
    this.counters.bytesIn += chunk.length;
    this.#framer.push(chunk);
    this.#pump();
  }

  #pump(): void {
    if (this.replies.ending) return;
    const max = this.#limits.maxInFlight;
    try {
      while (!this.replies.ending) {
        const replies = this.replies;
        if (replies.size >= max || replies.bytesInFlight >= IN_FLIGHT_BUDGET_BYTES || this.#socket.writableNeedDrain || replies.heldBack) {
          this.#pause();
          this.#account();
          return;
        }
        const framer = this.#framer;
        if (!framer.nextLine()) {
          this.#parser.forgetMessage();
          // PROTOCOL: a connection closing mid-line just closes; the partial line never runs.
          if (this.#draining) this.replies.end();
          break;
        }
        if (this.lineStartedAt !== 0) this.lineStartedAt = 0;
        const command = this.#parser.feed(framer.source, framer.start, framer.end);
        if (command !== null) dispatch(this, command);
      }
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      this.counters.protocolError(err.code);
      // PROTOCOL: drop the connection; the commands before the bad line still get their
      // replies, in order, and nothing from it on runs. No error text is sent.
      this.replies.end();
      this.#pause();
      this.#account();
      return;
    }
    if (!this.#framer.hasUnreadBytes && this.#paused && !this.#draining && !this.replies.ending) {
      this.#paused = false;
      this.#socket.resume();
    }
    this.#account();
  }

  /**
   * After a read: tells the guard how many unfinished bytes this connection holds (only
   * when that changed), and stamps when an unfinished line began (only when it has one).
   */
  #account(): void {
    const framer = this.#framer;
    const held = framer.partialBytes;
    if (held === 0 && this.#heldReported === 0) return;
    if (held > 0 && this.lineStartedAt === 0 && !this.#paused && !framer.hasUnreadBytes) this.lineStartedAt = performance.now();
    if (held !== this.#heldReported) {
      this.#heldReported = held;
      // Last: over the server's budget, this may close connections, this one included.
      this.#guard.heldChanged(this, held);
    }
  }

  #pause(): void {
    // A line cannot finish while it is not read: its clock stops.
    this.lineStartedAt = 0;
    this.#framer.dropSpare();
    this.#parser.forgetMessage();
    if (this.#paused || this.#finished) return;
    this.#paused = true;
    this.#socket.pause();
    // Kept only if it will be read: once the replies end, what is left is dropped.
    if (this.#sharedReads && !this.replies.ending) this.#framer.detach();
  }

  #write(replies: Buffer): void {
    const socket = this.#socket;
    if (socket.destroyed) return;
    this.counters.bytesOut += replies.length;
    // Each write's completion tells the guard again what is left: 'drain' comes only
    // after a write that passed the high-water mark.
    socket.write(replies, this.#afterWrite);
    // Over the server's budget, this may close connections, this one included.
    this.#accountReplies();
    if (this.#paused && !socket.destroyed) this.#pump();
  }

  /** Tells the guard how many reply bytes the socket holds unsent, when that changed (nearly always 0: the kernel takes them). */
  #accountReplies(): void {
    const held = this.#socket.writableLength;
    if (held === this.#repliesHeld) return;
    this.#repliesHeld = held;
    this.#guard.repliesHeldChanged(this, held);
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
    const socket = this.#socket;
    // Quiet because the server is still working on its commands (a busy or restarting
    // shard) is not the peer being idle.
    if (this.replies.awaitingShard) {
      socket.setTimeout(this.#limits.idleTimeoutMs);
      return;
    }
    // PROTOCOL: an idle connection is closed, so a dead peer cannot hold a socket
    // forever. First gracefully, after the replies it is owed; if it is still idle one
    // more period later (a peer that takes nothing, say), it is destroyed.
    if (this.#idledOnce) {
      this.destroy();
      return;
    }
    this.#idledOnce = true;
    this.shutdown();
    // Node arms the timer again only on traffic; a silent peer must be timed once more.
    socket.setTimeout(this.#limits.idleTimeoutMs);
  }
}
