import { createHistogram, performance, type RecordableHistogram } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { drain } from './drain.js';
import {
  type ErrorReport,
  type FromWorker,
  type LoadShape,
  PHASE_MEASURE,
  PHASE_STOP,
  PHASE_WARMUP,
  type RunCounts,
  type WindowCounts,
  type WorkerInit,
  type WorkerResult,
} from './types.js';
import { type FinalCheck, Verifier } from './verify.js';

// The harness runs under tsx (npm run bench): see worker-entry.cjs for why a CommonJS entry.
const WORKER_FILE = new URL('./worker-entry.cjs', import.meta.url);

/** CPU time a process has used, in microseconds, read at one instant. */
export interface CpuProbe {
  cpuMicros(): Promise<number | null>;
  /** The same with a breakdown by thread name (pigeonhole's acceptors and shards, on Linux), read at one instant. */
  sample?(): Promise<{ total: number | null; threads: Record<string, number> }>;
}

/** A probe's reading, in all and by thread. */
async function sampleCpu(probe: CpuProbe | undefined): Promise<{ total: number | null; threads: Record<string, number> }> {
  if (probe === undefined) return { total: null, threads: {} };
  return probe.sample !== undefined ? probe.sample() : { total: await probe.cpuMicros(), threads: {} };
}

export interface LoadOptions extends Omit<LoadShape, 'tlsCa'> {
  /** Connect over TLS trusting this CA (PEM). Default: plain TCP. */
  readonly tlsCa?: Uint8Array | null;
  /** Generator worker threads; connections are split evenly between them. */
  readonly threads: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  /** The server's CPU, sampled at both ends of the measured window. */
  readonly serverCpu?: CpuProbe;
  /** How long connections may take to answer what is outstanding at the stop. Default 10 s. */
  readonly stopGraceMs?: number;
  readonly drainTimeoutMs?: number;
  readonly log?: (line: string) => void;
}

export interface LatencySummary {
  /** Nanoseconds. */
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  readonly mean: number;
  readonly count: number;
  /** The HDR histogram's percentile -> nanoseconds steps, for plotting or comparing runs. */
  readonly distribution: [percentile: number, ns: number][];
}

export interface LoadResult {
  readonly windowSeconds: number;
  /** COMPOSE and READ replies received in the window. */
  readonly ops: number;
  readonly opsPerSecond: number;
  readonly window: WindowCounts;
  readonly run: RunCounts;
  readonly latency: LatencySummary;
  readonly errors: ErrorReport;
  readonly check: FinalCheck;
  readonly drain: { users: number; messages: number; seconds: number };
  /** CPU use over the window in percent of one core (100 = one core busy). */
  readonly generatorCpuPercent: number;
  readonly serverCpuPercent: number | null;
  /**
   * CPU time per COMPOSE/READ in microseconds. Steadier than ops/s when other work shares
   * the cores: it is what the server spends per command, whatever it was given.
   */
  readonly serverCpuMicrosPerOp: number | null;
  /**
   * The same by thread of the server ('acceptor 0', 'shard 1', ..., and 'other' for the
   * rest of the process: libuv's pool, V8's helpers), when the server can tell.
   */
  readonly serverThreadMicrosPerOp: Record<string, number> | null;
  readonly generatorCpuMicrosPerOp: number | null;
  /** True when there were no errors and composed − failed = read. */
  readonly ok: boolean;
}

/**
 * Drives a server: spreads the connections over worker threads, warms up, measures for
 * the duration, stops, waits for every outstanding reply, drains every mailbox it wrote
 * to, and checks each message was read exactly once.
 */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const log = options.log ?? (() => {});
  const shape: LoadShape = {
    dialect: options.dialect,
    host: options.host,
    port: options.port,
    ...(options.ports === undefined ? {} : { ports: options.ports }),
    connections: options.connections,
    pipeline: options.pipeline,
    users: options.users,
    composeShare: options.composeShare,
    toReaders: options.toReaders,
    messageBytes: options.messageBytes,
    prefix: options.prefix,
    tlsCa: options.tlsCa ?? null,
  };
  const threads = Math.max(1, Math.min(options.threads, shape.connections));
  const phaseBuffer = new SharedArrayBuffer(4);
  const phase = new Int32Array(phaseBuffer);
  const workers: Worker[] = [];
  const results: Promise<WorkerResult>[] = [];
  const ready: Promise<void>[] = [];
  const stopGraceMs = options.stopGraceMs ?? 10_000;

  let first = 0;
  for (let t = 0; t < threads; t++) {
    const count = Math.floor(shape.connections / threads) + (t < shape.connections % threads ? 1 : 0);
    const init: WorkerInit = { shape, first, count, phase: phaseBuffer, stopGraceMs, setupTimeoutMs: 15_000 };
    first += count;
    const worker = new Worker(WORKER_FILE, { workerData: init });
    workers.push(worker);
    const { ready: isReady, result } = track(worker, t);
    ready.push(isReady);
    results.push(result);
  }
  // Rejections are awaited below; until then keep them from counting as unhandled.
  for (const promise of [...ready, ...results]) promise.catch(() => {});

  try {
    await Promise.all(ready);
    Atomics.store(phase, 0, PHASE_WARMUP);
    for (const worker of workers) worker.postMessage({ op: 'go' });
    if (options.warmupMs > 0) await sleep(options.warmupMs);

    const serverCpu0 = sampleCpu(options.serverCpu);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    Atomics.store(phase, 0, PHASE_MEASURE);
    await sleep(options.durationMs);
    Atomics.store(phase, 0, PHASE_STOP);
    const t1 = performance.now();
    const cpu = process.cpuUsage(cpu0);
    const serverCpu1 = sampleCpu(options.serverCpu);
    for (const worker of workers) worker.postMessage({ op: 'stop' });

    const windowMicros = (t1 - t0) * 1000;
    const [sample0, sample1] = await Promise.all([serverCpu0, serverCpu1]);
    const serverStart = sample0.total;
    const serverEnd = sample1.total;
    const serverCpuPercent = serverStart === null || serverEnd === null ? null : ((serverEnd - serverStart) / windowMicros) * 100;
    const generatorCpuPercent = ((cpu.user + cpu.system) / windowMicros) * 100;

    const finished = await Promise.all(results);
    const verifier = new Verifier(shape.connections, shape.messageBytes, shape.prefix);
    const histogram: RecordableHistogram = createHistogram();
    const window: WindowCounts = { composes: 0, failed: 0, reads: 0, readHits: 0 };
    const run: RunCounts = { composeReplies: 0, sent: 0, failed: 0, reads: 0, readHits: 0, abandoned: 0 };
    const outcomes: Uint8Array[] = [];
    const usedRecipients = new Uint8Array(shape.connections + shape.users);
    for (const result of finished) {
      histogram.add(result.histogram);
      for (const key of Object.keys(window) as (keyof WindowCounts)[]) window[key] += result.window[key];
      for (const key of Object.keys(run) as (keyof RunCounts)[]) run[key] += result.run[key];
      verifier.errors.merge(result.errors.counts, result.errors.samples);
      verifier.ledger.merge(result.reads);
      outcomes.push(...result.outcomes);
      for (let r = 0; r < usedRecipients.length; r++) usedRecipients[r] = (usedRecipients[r] as number) | (result.usedRecipients[r] as number);
    }

    // Every connection's own user is drained too: it may hold messages it never read.
    const toDrain: number[] = [];
    for (let r = 0; r < usedRecipients.length; r++) if (r < shape.connections || usedRecipients[r] === 1) toDrain.push(r);
    log(`draining ${toDrain.length} mailboxes`);
    const drainStart = performance.now();
    const drained = await drain(shape, verifier, toDrain, { timeoutMs: options.drainTimeoutMs ?? 120_000 });
    const drainSeconds = (performance.now() - drainStart) / 1000;
    const check = verifier.finalCheck(outcomes);

    const ops = window.composes + window.reads;
    const windowSeconds = (t1 - t0) / 1000;
    const errors: ErrorReport = { counts: verifier.errors.counts, total: verifier.errors.total, samples: verifier.errors.samples };
    return {
      windowSeconds,
      ops,
      opsPerSecond: ops / windowSeconds,
      window,
      run,
      latency: summarize(histogram),
      errors,
      check,
      drain: { users: toDrain.length, messages: drained, seconds: drainSeconds },
      generatorCpuPercent,
      serverCpuPercent,
      serverCpuMicrosPerOp: serverStart === null || serverEnd === null || ops === 0 ? null : (serverEnd - serverStart) / ops,
      serverThreadMicrosPerOp: perThread(sample0, sample1, ops),
      generatorCpuMicrosPerOp: ops === 0 ? null : (cpu.user + cpu.system) / ops,
      ok: errors.total === 0 && check.sent === check.read,
    };
  } finally {
    await Promise.all(workers.map((worker) => worker.terminate()));
  }
}

/** Each named thread's CPU per command over the window, and 'other' for the rest of the process. */
function perThread(start: { total: number | null; threads: Record<string, number> }, end: { total: number | null; threads: Record<string, number> }, ops: number): Record<string, number> | null {
  const names = Object.keys(end.threads).filter((name) => start.threads[name] !== undefined);
  if (names.length === 0 || ops === 0) return null;
  const out: Record<string, number> = {};
  let named = 0;
  for (const name of names) {
    const used = (end.threads[name] as number) - (start.threads[name] as number);
    named += used;
    out[name] = used / ops;
  }
  if (start.total !== null && end.total !== null) out.other = Math.max(0, end.total - start.total - named) / ops;
  return out;
}

function track(worker: Worker, thread: number): { ready: Promise<void>; result: Promise<WorkerResult> } {
  let markReady: () => void = () => {};
  let fail: (err: Error) => void = () => {};
  let deliver: (result: WorkerResult) => void = () => {};
  const ready = new Promise<void>((resolve, reject) => {
    markReady = resolve;
    fail = reject;
  });
  const result = new Promise<WorkerResult>((resolve, reject) => {
    deliver = resolve;
    const failBoth = fail;
    fail = (err) => {
      failBoth(err);
      reject(err);
    };
  });
  worker.on('message', (message: FromWorker) => {
    if (message.op === 'ready') markReady();
    else if (message.op === 'result') deliver(message.result);
    else fail(new Error(`generator thread ${thread}: ${message.message}`));
  });
  worker.on('error', (err) => fail(err));
  worker.on('exit', (code) => fail(new Error(`generator thread ${thread} exited (code ${code}) before reporting`)));
  return { ready, result };
}

function summarize(histogram: RecordableHistogram): LatencySummary {
  const count = histogram.count;
  const at = (p: number): number => (count === 0 ? 0 : histogram.percentile(p));
  return {
    p50: at(50),
    p90: at(90),
    p99: at(99),
    p999: at(99.9),
    max: count === 0 ? 0 : histogram.max,
    mean: count === 0 ? 0 : histogram.mean,
    count,
    distribution: count === 0 ? [] : [...histogram.percentiles],
  };
}
