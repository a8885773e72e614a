import type { SerializedError } from '../errors.js';
import type { LogFields } from '../logger.js';
import type { CounterTotals } from '../metrics/registry.js';
import type { ConnectionLimits } from '../session/connection.js';
import type { ShardConfig } from '../shards/messages.js';
import type { AcceptorLinkEnd } from '../shards/worker-shards.js';
import type { ResolvedServerTls } from '../tls/server-tls.js';

/**
 * How a further acceptor thread accepts on the server's port:
 *   'descriptor'  the listening socket itself, through a descriptor of the thread's own
 *                 (see shared-port.ts); every thread accepts from one queue
 *   'reuse-port'  a listening socket of its own on the same port (SO_REUSEPORT, Node
 *                 22.12 and later): the kernel spreads connections over the sockets
 */
export type ListenTarget = { readonly kind: 'descriptor'; readonly fd: number } | { readonly kind: 'reuse-port'; readonly host: string; readonly port: number };

/** What a further acceptor thread is started with (its workerData); plain data and transferred ports. */
export interface AcceptorTaskData {
  /** 1 to acceptors - 1: the thread that calls listen() is acceptor 0. */
  readonly acceptor: number;
  readonly acceptors: number;
  /** This incarnation's link: the shards journal its batches under it. */
  readonly link: number;
  readonly listen: ListenTarget;
  /** Step back from accepting while holding more than an even share (see AcceptBalance). */
  readonly balance: boolean;
  /** The server's SharedConnections. */
  readonly connections: SharedArrayBuffer;
  /** Its channel to each shard, by shard. */
  readonly links: readonly AcceptorLinkEnd[];
  readonly batchesInFlight: number;
  readonly config: ShardConfig;
  /** The router's settings, as on the listening thread. */
  readonly replay: boolean;
  readonly sharedStore: boolean;
  readonly limits: ConnectionLimits;
  readonly guard: {
    readonly maxConnections: number;
    readonly maxConnectionsPerIp: number;
    readonly maxConnectionRatePerIp: number;
    readonly lineTimeoutMs: number;
    /** This thread's share of maxLineBufferBytes. */
    readonly maxLineBufferBytes: number;
    /** This thread's share of maxReplyBufferBytes. */
    readonly maxReplyBufferBytes: number;
  };
  /** The TLS material in use, as PEM; null without TLS. */
  readonly tls: ResolvedServerTls | null;
  /** The host's logger takes debug lines: send them too. */
  readonly debug: boolean;
}

/** Levels an acceptor thread's log line crosses its port with. */
export type AcceptorLogLevel = 'info' | 'warn' | 'error' | 'debug';

/** What an acceptor thread can be asked; each answer carries the question's id. */
export type Question = { readonly what: 'totals' } | { readonly what: 'remotes' } | { readonly what: 'tls'; readonly tls: ResolvedServerTls };

/** Supervisor to acceptor thread. */
export type ToAcceptor =
  | { readonly op: 'close'; readonly graceMs: number }
  | ({ readonly op: 'ask'; readonly id: number } & Question)
  | { readonly op: 'replaced'; readonly shardId: number; readonly end: AcceptorLinkEnd; readonly error: SerializedError };

/** Acceptor thread to supervisor. */
export type FromAcceptor =
  | { readonly op: 'ready'; readonly threadId: number; readonly tid: number | null }
  | { readonly op: 'failed'; readonly error: SerializedError }
  | { readonly op: 'log'; readonly level: AcceptorLogLevel; readonly fields: LogFields; readonly message: string }
  | { readonly op: 'answer'; readonly id: number; readonly totals?: CounterTotals; readonly remotes?: string[]; readonly error?: SerializedError }
  | { readonly op: 'samples'; readonly shard: Uint16Array; readonly size: Uint32Array; readonly seconds: Float64Array }
  | { readonly op: 'closed' };

/** One acceptor thread, as server.acceptors() lists them. */
export interface AcceptorInfo {
  /** 0 is the thread that called listen(). */
  readonly acceptor: number;
  /** Node's id of the thread (worker_threads.threadId). */
  readonly threadId: number | null;
  /** The operating system's id of the thread (Linux): `top -H` shows it. */
  readonly tid: number | null;
  /** Restarts after its thread died. */
  readonly restarts: number;
  /** Accepting connections; false while it starts or restarts. */
  readonly ready: boolean;
}
