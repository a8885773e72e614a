import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { LimitCounts } from '../session/connection-guard.js';
import { REJECT_REASONS, type RejectReason } from '../session/counters.js';
import type { ShardInfo } from '../shards/backend.js';
import type { BatchSamples } from '../shards/counters.js';
import type { StoreStats } from '../store/store.js';

/** What connections did, as SessionCounters counts it. */
export interface SessionTotals {
  readonly accepted: number;
  readonly rejected: Readonly<Record<RejectReason, number>>;
  readonly login: number;
  readonly compose: number;
  readonly read: number;
  readonly exit: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly protocolErrors: ReadonlyMap<string, number>;
}

/** The replies a router handed out, as ReplyCounters counts them. */
export interface ReplyTotals {
  readonly loginCount: number;
  readonly messageSent: number;
  readonly messageFailed: number;
  readonly readMessage: number;
  readonly readError: number;
  readonly aborted: number;
  /** Not a reply: batches a shard had not answered after 5 s (the router counts both). */
  readonly stalls: number;
}

/** Every counter the metrics read, for one acceptor thread or summed over all of them. */
export interface CounterTotals {
  readonly session: SessionTotals;
  /** What the connection limits turned away or cut (see ConnectionGuard). */
  readonly limits: Readonly<LimitCounts>;
  readonly replies: ReplyTotals;
  readonly openConnections: number;
}

/** Where the metrics come from: the server's plain counters and what it can be asked. */
export interface MetricsSource {
  /**
   * The counters of every acceptor thread, summed. Asked once per read of the registry
   * (the threads other than the caller's are asked over their ports).
   */
  totals(): Promise<CounterTotals>;
  /** Where routers keep their batch samples: each read takes them all. */
  readonly samples: readonly BatchSamples[];
  shards(): ShardInfo[];
  acceptors(): readonly { readonly acceptor: number; readonly restarts: number; readonly ready: boolean }[];
  storeStats(): Promise<(StoreStats | null)[]>;
}

const METRIC_PREFIX = 'pigeonhole_';

// Commands per batch: 1 when idle, up to thousands under a deep pipeline.
const BATCH_SIZE_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096];
// A batch's round trip to its shard and back: tens of microseconds in memory, up to a
// disk's sync time (and a restart's) for durable stores.
const ROUND_TRIP_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

/** One question at a time: callers while it is out share its answer, the next call asks again. */
function sharedAsk<T>(ask: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | null = null;
  return () => (pending ??= ask().finally(() => (pending = null)));
}

/** A counter set to a total kept elsewhere: prom-client counters only go up, so reset, then add. */
function setCounter(counter: Counter<string>, value: number, labels?: Record<string, string>): void {
  if (labels === undefined) counter.inc(value);
  else counter.inc(labels, value);
}

/**
 * The server's metrics as a prom-client registry (a host may merge it into its own with
 * `Registry.merge`). Nothing here runs per command: every metric reads the server's plain
 * counters in a collect() callback, when the registry is read, and the per-batch
 * histograms take the samples the router kept since the last read.
 */
export function createMetricsRegistry(source: MetricsSource): Registry {
  const registry = new Registry();
  const registers = [registry];
  const shardLabel = (shard: number): string => String(shard);
  // One question to the acceptor threads per read of the registry, shared by every metric.
  const totals = sharedAsk(() => source.totals());
  /** A counter of totals the acceptor threads keep: each [value, label value] read at scrape time. */
  const totalsCounter = (name: string, help: string, labelName: string | null, read: (totals: CounterTotals) => Iterable<readonly [number, string?]>): void => {
    new Counter({
      name: `${METRIC_PREFIX}${name}`,
      help,
      labelNames: labelName === null ? [] : [labelName],
      registers,
      async collect() {
        const values = read(await totals());
        this.reset();
        for (const [value, label] of values) setCounter(this, value, labelName === null || label === undefined ? undefined : { [labelName]: label });
      },
    });
  };

  new Gauge({
    name: `${METRIC_PREFIX}connections_open`,
    help: 'Client connections open now (past the TLS handshake, with TLS).',
    registers,
    async collect() {
      this.set((await totals()).openConnections);
    },
  });
  totalsCounter('connections_accepted_total', 'Client connections that reached the protocol (after the TLS handshake, with TLS).', null, ({ session }) => [[session.accepted]]);
  totalsCounter(
    'connections_rejected_total',
    'Client connections turned away before the protocol, by reason: max_connections, max_connections_per_ip, max_connection_rate_per_ip (limits), tls_handshake, no_identity (a client certificate naming no usable user), closing.',
    'reason',
    ({ session, limits }) => [
      [limits.refusedConnections, 'max_connections'],
      [limits.refusedPerIp, 'max_connections_per_ip'],
      [limits.refusedRatePerIp, 'max_connection_rate_per_ip'],
      ...REJECT_REASONS.map((reason) => [session.rejected[reason], reason] as const),
    ],
  );
  totalsCounter(
    'connections_cut_total',
    'Client connections closed by a limit after they were let in, by reason: line_timeout (a line not complete within lineTimeoutMs), line_buffer (the most unfinished bytes when all connections held more than maxLineBufferBytes), reply_buffer (the most replies not taken when all connections held more than maxReplyBufferBytes).',
    'reason',
    ({ limits }) => [
      [limits.lineTimeouts, 'line_timeout'],
      [limits.lineBufferDrops, 'line_buffer'],
      [limits.replyBufferDrops, 'reply_buffer'],
    ],
  );
  totalsCounter('accept_errors_total', 'Connections the server could not accept (out of file descriptors, say).', null, ({ limits }) => [[limits.acceptErrors]]);
  totalsCounter('commands_total', 'Commands received, by command: login, compose, read, exit.', 'command', ({ session }) => [
    [session.login, 'login'],
    [session.compose, 'compose'],
    [session.read, 'read'],
    [session.exit, 'exit'],
  ]);
  totalsCounter(
    'replies_total',
    'Replies sent, by kind: login_count, message_sent, message_failed, read_message, read_error; aborted counts commands whose connection was dropped unanswered (their shard was lost, their mailbox is fenced off as damaged, or the store failed or could not say whether the command took effect).',
    'kind',
    ({ replies }) => [
      [replies.loginCount, 'login_count'],
      [replies.messageSent, 'message_sent'],
      [replies.messageFailed, 'message_failed'],
      [replies.readMessage, 'read_message'],
      [replies.readError, 'read_error'],
      [replies.aborted, 'aborted'],
    ],
  );
  totalsCounter(
    'shard_stalls_total',
    'Batches a shard had not answered 5 s after they were sent, each also logged as PH_ERR_SHARD_STALLED: a slow disk, a slow Redis or a stuck shard.',
    null,
    ({ replies }) => [[replies.stalls]],
  );
  totalsCounter('protocol_errors_total', 'Connections dropped for breaking the protocol, by error code (PH_ERR_PROTOCOL_*).', 'code', ({ session }) =>
    [...session.protocolErrors].map(([code, count]) => [count, code] as const),
  );
  totalsCounter('received_bytes_total', 'Protocol bytes received from clients (decrypted, with TLS).', null, ({ session }) => [[session.bytesIn]]);
  totalsCounter('sent_bytes_total', 'Protocol bytes written to clients (before encryption, with TLS).', null, ({ session }) => [[session.bytesOut]]);

  // Both histograms come from the same samples: whichever is read first takes them all.
  const batchSize = new Histogram({
    name: `${METRIC_PREFIX}shard_batch_commands`,
    help: 'Commands per batch sent to a shard (one batch per shard per event-loop turn at most).',
    labelNames: ['shard'],
    buckets: BATCH_SIZE_BUCKETS,
    registers,
    collect: () => takeAll(),
  });
  const roundTrip = new Histogram({
    name: `${METRIC_PREFIX}shard_round_trip_seconds`,
    help: 'Time from sending a batch to a shard to its reply batch arriving.',
    labelNames: ['shard'],
    buckets: ROUND_TRIP_BUCKETS,
    registers,
    collect: () => takeAll(),
  });
  const labelsByShard: { shard: string }[] = [];
  const takeSamples = (samples: BatchSamples): void => {
    for (let i = 0; i < samples.length; i++) {
      const shard = samples.shard[i] as number;
      const labels = (labelsByShard[shard] ??= { shard: shardLabel(shard) });
      batchSize.observe(labels, samples.size[i] as number);
      roundTrip.observe(labels, samples.seconds[i] as number);
    }
    samples.length = 0;
  };
  // The samples the acceptor threads send in are in these by the time totals() answers.
  const takeAll = async (): Promise<void> => {
    await totals();
    for (const samples of source.samples) takeSamples(samples);
  };
  for (const samples of source.samples) samples.drain = takeSamples;

  /** A thread kind's two metrics: restarts so far, and whether each thread is up now. */
  const threadMetrics = (kind: string, threads: () => readonly { restarts: number; ready: boolean; label: string }[], restartsHelp: string, upHelp: string): void => {
    new Counter({
      name: `${METRIC_PREFIX}${kind}_restarts_total`,
      help: restartsHelp,
      labelNames: [kind],
      registers,
      collect() {
        this.reset();
        for (const thread of threads()) setCounter(this, thread.restarts, { [kind]: thread.label });
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}${kind}_up`,
      help: upHelp,
      labelNames: [kind],
      registers,
      collect() {
        this.reset();
        for (const thread of threads()) this.set({ [kind]: thread.label }, thread.ready ? 1 : 0);
      },
    });
  };
  threadMetrics(
    'shard',
    () => source.shards().map((shard) => ({ ...shard, label: shardLabel(shard.shardId) })),
    'Times a shard was restarted after its worker died.',
    '1 while a shard serves batches, 0 while it starts or restarts.',
  );
  threadMetrics(
    'acceptor',
    () => source.acceptors().map((acceptor) => ({ ...acceptor, label: String(acceptor.acceptor) })),
    'Times an acceptor thread was restarted after it died (acceptor 0, the thread that listens, never is).',
    '1 while an acceptor thread accepts connections, 0 while it starts or restarts.',
  );

  // One request to the shards per read of the registry, shared by the two gauges.
  const storeStats = sharedAsk(() => source.storeStats());
  /** A gauge per shard of what its store reports (left out for a shard that cannot answer). */
  const storeGauge = (name: string, help: string, pick: (stats: StoreStats) => number): void => {
    new Gauge({
      name: `${METRIC_PREFIX}${name}`,
      help,
      labelNames: ['shard'],
      registers,
      async collect() {
        const stats = await storeStats();
        this.reset();
        stats.forEach((stat, shard) => stat !== null && this.set({ shard: shardLabel(shard) }, pick(stat)));
      },
    });
  };
  storeGauge('stored_messages', "Messages stored in a shard's mailboxes (absent while the shard cannot answer).", (stats) => stats.messages);
  storeGauge('store_bytes', "Bytes a shard's store takes: its SQLite database (WAL not included), or in memory what counts against maxStoreBytes (messages, pages given back but still held, mailboxes and senders).", (stats) => stats.bytes);

  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  return registry;
}
