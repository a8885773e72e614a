import type { Socket } from 'node:net';
import type { LimitErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';
import { connectionsFor, descriptorLimit } from '../util/descriptors.js';
import { limitKey } from '../util/remote-address.js';
import { RateLimitedLog } from '../util/rate-limited-log.js';
import { type ConnectionTally, LocalTally } from './connection-tally.js';
import { ConnectionRate } from './connection-rate.js';

export interface ConnectionGuardOptions {
  /** Connections open at once; more are closed at once, unanswered. */
  readonly maxConnections: number;
  /** Connections open at once from one address; 0: no such limit. */
  readonly maxConnectionsPerIp: number;
  /** New connections one address may open per second (a sliding second); 0: no such limit. */
  readonly maxConnectionRatePerIp: number;
  /** A line must be complete this long after its first byte arrived; 0: no limit. */
  readonly lineTimeoutMs: number;
  /** Bytes of unfinished lines held across all connections. */
  readonly maxLineBufferBytes: number;
  /** Bytes of replies written and not yet taken by their peers, across all connections. */
  readonly maxReplyBufferBytes: number;
  readonly logger: Logger;
  /**
   * Where open connections are counted against maxConnections and maxConnectionsPerIp:
   * by default this guard alone; with several acceptor threads, all of them together.
   */
  readonly tally?: ConnectionTally;
  /** Where new connections are counted against maxConnectionRatePerIp: likewise this guard's own, or all threads'. */
  readonly rate?: ConnectionRate;
  /** Where the limits' counts go: by default an object of this guard's own. */
  readonly counts?: LimitCounts;
}

/** What the guard watches of a connection. */
export interface GuardedConnection {
  /** performance.now() when its unfinished line began to arrive; 0 while it holds none (or is not being read). */
  readonly lineStartedAt: number;
  /** Closes it at once: nothing more is sent. */
  destroy(): void;
}

/** How many connections each limit has closed since the server started. */
export interface LimitCounts {
  /** Refused at accept: maxConnections were open. */
  refusedConnections: number;
  /** Refused at accept: their address had maxConnectionsPerIp open. */
  refusedPerIp: number;
  /** Refused at accept: their address had opened maxConnectionRatePerIp in the last second. */
  refusedRatePerIp: number;
  /** Closed: a line took longer than lineTimeoutMs. */
  lineTimeouts: number;
  /** Closed: they held the most unfinished line bytes when the total passed maxLineBufferBytes. */
  lineBufferDrops: number;
  /** Closed: they held the most replies not taken when the total passed maxReplyBufferBytes. */
  replyBufferDrops: number;
  /** accept() failures (out of file descriptors, say). */
  acceptErrors: number;
}

/** Every field of LimitCounts, in one order for whoever stores or sums them. */
export const LIMIT_FIELDS = ['refusedConnections', 'refusedPerIp', 'refusedRatePerIp', 'lineTimeouts', 'lineBufferDrops', 'replyBufferDrops', 'acceptErrors'] as const satisfies readonly (keyof LimitCounts)[];

/** Limit counts at zero. */
export function noLimitCounts(): LimitCounts {
  return { refusedConnections: 0, refusedPerIp: 0, refusedRatePerIp: 0, lineTimeouts: 0, lineBufferDrops: 0, replyBufferDrops: 0, acceptErrors: 0 };
}

/**
 * What each connection holds of one kind of buffer, and their total: past `max`, the
 * connections holding the most are closed first (through `drop`) until it fits again.
 */
class Holdings {
  readonly #held = new Map<GuardedConnection, number>();
  readonly #max: number;
  readonly #drop: (connection: GuardedConnection, held: number) => void;
  #total = 0;

  constructor(max: number, drop: (connection: GuardedConnection, held: number) => void) {
    this.#max = max;
    this.#drop = drop;
  }

  get total(): number {
    return this.#total;
  }

  /** The connections watched, holding something or not. */
  keys(): IterableIterator<GuardedConnection> {
    return this.#held.keys();
  }

  watch(connection: GuardedConnection): void {
    this.#held.set(connection, 0);
  }

  /** `connection` holds `held` bytes now (ignored if it is not, or no longer, watched). */
  set(connection: GuardedConnection, held: number): void {
    const before = this.#held.get(connection);
    if (before === undefined) return; // closed, or dropped already
    this.#held.set(connection, held);
    this.#total += held - before;
    if (this.#total > this.#max) this.#shed();
  }

  forget(connection: GuardedConnection): void {
    const held = this.#held.get(connection);
    if (held === undefined) return;
    this.#held.delete(connection);
    this.#total -= held;
  }

  #shed(): void {
    const biggest = [...this.#held].sort((a, b) => b[1] - a[1]);
    for (const [connection, held] of biggest) {
      if (this.#total <= this.#max || held === 0) break;
      this.forget(connection);
      this.#drop(connection, held);
    }
  }
}

// The sweep for overdue lines runs this often: a trickle is cut between lineTimeoutMs
// and lineTimeoutMs plus this.
const MAX_SWEEP_MS = 5_000;
const MIN_SWEEP_MS = 50;

/**
 * The server-wide limits on what clients may hold: connections (in all, per address),
 * time to finish a line, and memory for unfinished lines and for replies their peers
 * have not taken. A connection over a limit is closed at once without a reply, counted,
 * and logged (rate-limited: one line per cause per interval, with the count).
 *
 * Nothing here runs per command or per line. A connection tells the guard how many
 * bytes of unfinished input it holds only when a read leaves that figure changed, how
 * many bytes of replies its socket holds only when a write left some there (or a drain
 * took them), and stamps the start of an unfinished line only when a read ends
 * mid-line; one timer for the whole server sweeps for lines that are overdue.
 */
export class ConnectionGuard {
  readonly counts: LimitCounts;
  readonly #options: ConnectionGuardOptions;
  readonly #log: RateLimitedLog;
  readonly #tally: ConnectionTally;
  readonly #rate: ConnectionRate;
  // Each connection with the unfinished input bytes it last reported.
  readonly #lines: Holdings;
  // Each connection with the reply bytes its socket last held unsent.
  readonly #replies: Holdings;
  #sweep: ReturnType<typeof setInterval> | null = null;

  constructor(options: ConnectionGuardOptions) {
    this.#options = options;
    this.#log = new RateLimitedLog(options.logger);
    this.#tally = options.tally ?? new LocalTally(options.maxConnections, options.maxConnectionsPerIp);
    this.#rate = options.rate ?? ConnectionRate.local(options.maxConnectionRatePerIp);
    this.counts = options.counts ?? noLimitCounts();
    const { maxLineBufferBytes, maxReplyBufferBytes } = options;
    this.#lines = new Holdings(maxLineBufferBytes, this.#dropper('PH_ERR_LIMIT_LINE_BUFFER', 'lineBufferDrops', 'of unfinished lines', `${maxLineBufferBytes} (maxLineBufferBytes)`));
    this.#replies = new Holdings(
      maxReplyBufferBytes,
      this.#dropper('PH_ERR_LIMIT_REPLY_BUFFER', 'replyBufferDrops', 'of replies its peer had not taken', `${maxReplyBufferBytes} (maxReplyBufferBytes)`),
    );
  }

  /** Connections open now (with several acceptor threads, on all of them). */
  get open(): number {
    return this.#tally.open;
  }

  /** Bytes of unfinished lines held across all connections now. */
  get heldBytes(): number {
    return this.#lines.total;
  }

  /** Bytes of replies written and not yet taken by their peers, across all connections now. */
  get heldReplyBytes(): number {
    return this.#replies.total;
  }

  /**
   * Lets a new socket in, or closes it at once (over a limit) and returns false. An
   * admitted socket counts until it closes.
   */
  admit(socket: Socket): boolean {
    const { maxConnections, maxConnectionsPerIp, maxConnectionRatePerIp } = this.#options;
    const address = socket.remoteAddress ?? '';
    const key = limitKey(address);
    const admission = this.#tally.take(key);
    if (admission === 'max-connections') {
      this.counts.refusedConnections++;
      return this.#refuse(socket, 'PH_ERR_LIMIT_CONNECTIONS', `refused a connection from ${address}: ${maxConnections} connections are open (maxConnections)`);
    }
    if (admission === 'max-per-ip') {
      this.counts.refusedPerIp++;
      return this.#refuse(socket, 'PH_ERR_LIMIT_CONNECTIONS_PER_IP', `refused a connection from ${address}: ${key === address ? 'it has' : `its ${key} has`} ${maxConnectionsPerIp} open (maxConnectionsPerIp)`);
    }
    // Counted last, so that only connections let in count towards the rate.
    if (!this.#rate.admit(key)) {
      this.#tally.release(key);
      this.counts.refusedRatePerIp++;
      return this.#refuse(socket, 'PH_ERR_LIMIT_CONNECTION_RATE_PER_IP', `refused a connection from ${address}: ${key === address ? 'it' : `its ${key}`} opened ${maxConnectionRatePerIp} in the last second (maxConnectionRatePerIp)`);
    }
    socket.once('close', () => this.#tally.release(key));
    return true;
  }

  /** Watches an admitted connection's lines until its socket closes. */
  watch(connection: GuardedConnection, socket: Socket): void {
    this.#lines.watch(connection);
    this.#replies.watch(connection);
    socket.once('close', () => this.#forget(connection));
    if (this.#sweep === null && this.#options.lineTimeoutMs > 0) {
      const every = Math.min(MAX_SWEEP_MS, Math.max(MIN_SWEEP_MS, Math.floor(this.#options.lineTimeoutMs / 4)));
      this.#sweep = setInterval(() => this.#sweepOverdue(), every).unref();
    }
  }

  /** `connection` now holds `held` bytes of unfinished input. */
  heldChanged(connection: GuardedConnection, held: number): void {
    this.#lines.set(connection, held);
  }

  /** `connection`'s socket now holds `held` bytes of replies not yet taken by its peer. */
  repliesHeldChanged(connection: GuardedConnection, held: number): void {
    this.#replies.set(connection, held);
  }

  /**
   * Warns when maxConnections is above what the descriptor limit leaves for connections:
   * past that, the operating system (libuv's accept) drops new connections itself, and
   * nothing reaches this log. Below it, the server refuses them first and says so.
   */
  checkDescriptors(limit: number | null = descriptorLimit()): void {
    const fits = connectionsFor(limit);
    if (limit === null || this.#options.maxConnections <= fits) return;
    this.#options.logger.warn(
      { code: 'PH_ERR_SERVER_ACCEPT_FAILED', maxConnections: this.#options.maxConnections, descriptors: limit },
      `maxConnections ${this.#options.maxConnections} is more than the descriptor limit (${limit}, ulimit -n) leaves for connections (${fits}): past that, connections are dropped by the system without a trace here. Raise the limit or lower maxConnections`,
    );
  }

  /** accept() failed (EMFILE, ENFILE...): the server goes on; logged, rate-limited. */
  acceptFailed(error: Error): void {
    this.counts.acceptErrors++;
    const code = (error as NodeJS.ErrnoException).code ?? 'unknown';
    this.#log.error(`accept:${code}`, { code: 'PH_ERR_SERVER_ACCEPT_FAILED', errno: code, open: this.open }, `could not accept a connection: ${error.message}`);
  }

  /** Stops the sweep and tells pending log counts. */
  close(): void {
    if (this.#sweep !== null) clearInterval(this.#sweep);
    this.#sweep = null;
    this.#log.flush();
  }

  #refuse(socket: Socket, code: LimitErrorCode, message: string): false {
    // PROTOCOL: over a limit, the connection is closed without a word.
    socket.destroy();
    this.#log.warn(code, { code, open: this.open }, message);
    return false;
  }

  /** Closes a connection that held the most of one kind when the total passed its budget: counted, logged. */
  #dropper(code: LimitErrorCode, count: 'lineBufferDrops' | 'replyBufferDrops', what: string, budget: string): (connection: GuardedConnection, held: number) => void {
    return (connection, held) => {
      this.#forget(connection);
      this.counts[count]++;
      this.#log.warn(code, { code, held }, `closed a connection holding ${held} bytes ${what}: all connections together held more than ${budget}`);
      connection.destroy();
    };
  }

  #forget(connection: GuardedConnection): void {
    this.#lines.forget(connection);
    this.#replies.forget(connection);
  }

  #sweepOverdue(): void {
    const now = performance.now();
    const { lineTimeoutMs } = this.#options;
    for (const connection of this.#lines.keys()) {
      const started = connection.lineStartedAt;
      if (started === 0 || now - started <= lineTimeoutMs) continue;
      this.#forget(connection);
      this.counts.lineTimeouts++;
      this.#log.warn('PH_ERR_LIMIT_LINE_TIMEOUT', { code: 'PH_ERR_LIMIT_LINE_TIMEOUT' }, `closed a connection whose line was not complete ${lineTimeoutMs} ms after it began (lineTimeoutMs)`);
      connection.destroy();
    }
  }
}
