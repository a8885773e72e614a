import type { RecordableHistogram } from 'node:perf_hooks';

/** Which wire protocol the generator speaks: pigeonhole's, or Redis inline commands. */
export type DialectName = 'pigeonhole' | 'redis';

/** The workload: the same shape whichever server is driven. */
export interface LoadShape {
  readonly dialect: DialectName;
  readonly host: string;
  readonly port: number;
  /**
   * Several servers of one deployment (nodes over one Redis): connection i goes to
   * ports[i % ports.length]; the drain uses `port`. Absent: every connection uses `port`.
   */
  readonly ports?: readonly number[];
  readonly connections: number;
  /** Commands kept outstanding per connection (1: wait for each reply). */
  readonly pipeline: number;
  /** Recipients beyond the connections' own users. */
  readonly users: number;
  /** Probability that a command is a COMPOSE (the rest are READs). */
  readonly composeShare: number;
  /** Probability that a COMPOSE goes to a connection's user (who READs) rather than a wider user. */
  readonly toReaders: number;
  readonly messageBytes: number;
  /** Start of every user name in this run, unique per run so leftovers of an old run never mix in. */
  readonly prefix: string;
  /** Connect over TLS, trusting this CA (PEM); null for plain TCP. */
  readonly tlsCa: Uint8Array | null;
}

// Phases, shared with the worker threads through one Int32 in a SharedArrayBuffer so a
// worker sees a change on its next reply without waiting for a message event.
export const PHASE_SETUP = 0;
export const PHASE_WARMUP = 1;
export const PHASE_MEASURE = 2;
export const PHASE_STOP = 3;

export interface WorkerInit {
  readonly shape: LoadShape;
  /** Global index of this thread's first connection, and how many it runs. */
  readonly first: number;
  readonly count: number;
  readonly phase: SharedArrayBuffer;
  readonly stopGraceMs: number;
  readonly setupTimeoutMs: number;
}

export const ERROR_KINDS = [
  'wrongReply',
  'missingReply',
  'unknownId',
  'duplicate',
  'lost',
  'failedButDelivered',
  'wrongSender',
  'wrongRecipient',
  'outOfOrder',
  'loginCount',
  'connection',
] as const;

export type ErrorKind = (typeof ERROR_KINDS)[number];
export type ErrorCounts = Record<ErrorKind, number>;

export interface ErrorReport {
  readonly counts: ErrorCounts;
  readonly total: number;
  /** The first few errors, described. */
  readonly samples: string[];
}

/** Replies that arrived during the measured window. */
export interface WindowCounts {
  composes: number;
  failed: number;
  reads: number;
  /** READs that returned a message (the rest returned READ ERROR / nil). */
  readHits: number;
}

/** Everything over the whole run (warm-up, window and the tail after stop). */
export interface RunCounts {
  composeReplies: number;
  sent: number;
  failed: number;
  reads: number;
  readHits: number;
  /** Commands left unanswered on connections the harness dropped after a wrong reply. */
  abandoned: number;
}

export interface WorkerResult {
  readonly histogram: RecordableHistogram;
  readonly window: WindowCounts;
  readonly run: RunCounts;
  readonly errors: { counts: ErrorCounts; samples: string[] };
  /** Per connection of this thread: the fate of each COMPOSE by sequence number (see OUTCOME_*). */
  readonly outcomes: Uint8Array[];
  /** Per composer (global index): how many times each sequence number was read by this thread. */
  readonly reads: (Uint8Array | null)[];
  /** Per recipient index: 1 when this thread composed to it. */
  readonly usedRecipients: Uint8Array;
}

export type FromWorker =
  | { op: 'ready' }
  | { op: 'result'; result: WorkerResult }
  | { op: 'failed'; message: string };

export type ToWorker = { op: 'go' } | { op: 'stop' };

// The fate of a COMPOSE, by its sequence number.
export const OUTCOME_PENDING = 0;
export const OUTCOME_SENT = 1;
export const OUTCOME_FAILED = 2;

export function emptyErrorCounts(): ErrorCounts {
  const counts = {} as ErrorCounts;
  for (const kind of ERROR_KINDS) counts[kind] = 0;
  return counts;
}
