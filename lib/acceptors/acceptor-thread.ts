import { Worker } from 'node:worker_threads';
import { AcceptorError, deserializeError, errorMessage, serializeError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { CounterTotals } from '../metrics/registry.js';
import type { BatchSamples } from '../shards/counters.js';
import type { AcceptorLinkEnd, WorkerShards } from '../shards/worker-shards.js';
import type { ResolvedServerTls } from '../tls/server-tls.js';
import type { AcceptorInfo, AcceptorTaskData, FromAcceptor, Question, ToAcceptor } from './messages.js';

// Under tsx (development, tests, the bench) this file is .ts, and the thread enters
// through a CommonJS file that requires the TypeScript (see it for why); compiled, at
// workers/acceptor.js.
const ENTRY = new URL(`../../workers/${import.meta.url.endsWith('.ts') ? 'acceptor-entry.cjs' : 'acceptor.js'}`, import.meta.url);

// A question unanswered this long (a thread stuck in a long turn) counts as no answer:
// a metrics scrape must not hang on one thread.
const ASK_TIMEOUT_MS = 2_000;
// After 'closed', or once this long has passed since close() (beyond the grace), the
// thread is ended.
const CLOSE_MARGIN_MS = 5_000;

/** What an incarnation needs from the pool that owns it. */
export interface AcceptorThreadContext {
  readonly shards: WorkerShards;
  readonly logger: Logger;
  /** The task data every incarnation shares (its acceptor, link, links and TLS are its own). */
  readonly task: Omit<AcceptorTaskData, 'acceptor' | 'link' | 'links' | 'tls'>;
  /** The TLS material in use now, handed to each new thread. */
  tls(): ResolvedServerTls | null;
  nextLink(): number;
  /** Where sample buffers sent by the threads go. */
  readonly samples: BatchSamples;
  /** Called once, after its thread has exited, when this incarnation ended other than by close(). */
  lost(thread: AcceptorThread, error: AcceptorError): void;
}

/**
 * Where an incarnation stands:
 *   'waiting'   backing off before its thread starts
 *   'starting'  its thread runs, and has not said it listens yet
 *   'ready'     accepting and serving
 *   'closing'   close() asked it to drain
 *   'lost'      its thread died or could not start; a new incarnation replaces it
 *   'closed'    ended by close()
 */
export type AcceptorThreadState = 'waiting' | 'starting' | 'ready' | 'closing' | 'lost' | 'closed';

/**
 * One incarnation of a further acceptor thread, as WorkerShard is for a shard: its
 * Worker, its link to the shards (journal key of its batches) and what is known of its
 * fate. A thread that dies ends the incarnation; the pool starts a new one.
 */
export class AcceptorThread {
  readonly acceptor: number;
  readonly restarts: number;
  readonly quickCrashes: number;
  readonly startsAt: number;
  readonly link: number;
  /** Resolves once the thread listens; rejects if this incarnation is lost first. */
  readonly ready: Promise<void>;
  /** Its counters as last asked (kept when it dies, so the server's sums do not go back). */
  lastTotals: CounterTotals | null = null;
  readonly #context: AcceptorThreadContext;
  #state: AcceptorThreadState = 'waiting';
  #worker: Worker | null = null;
  #threadId: number | null = null;
  #tid: number | null = null;
  #settleReady: { resolve(): void; reject(error: AcceptorError): void } | null = null;
  #cause: AcceptorError | null = null;
  #questions = new Map<number, (answer: Extract<FromAcceptor, { op: 'answer' }> | null) => void>();
  #nextQuestion = 1;
  #closed: (() => void) | null = null;
  #exited: Promise<void> = Promise.resolve();

  constructor(context: AcceptorThreadContext, acceptor: number, previous: AcceptorThread | null, quickCrashes: number, delayMs: number) {
    this.#context = context;
    this.acceptor = acceptor;
    this.restarts = previous === null ? 0 : previous.restarts + 1;
    this.quickCrashes = quickCrashes;
    this.startsAt = Date.now() + delayMs;
    this.link = context.nextLink();
    this.ready = new Promise<void>((resolve, reject) => (this.#settleReady = { resolve, reject }));
    this.ready.catch(() => {});
    if (delayMs === 0) this.#start();
    else setTimeout(() => this.#start(), delayMs).unref();
  }

  get state(): AcceptorThreadState {
    return this.#state;
  }

  describe(): AcceptorInfo {
    return { acceptor: this.acceptor, threadId: this.#threadId, tid: this.#tid, restarts: this.restarts, ready: this.#state === 'ready' };
  }

  /** Its counters now, or null when it does not answer in time. */
  async totals(): Promise<CounterTotals | null> {
    const answer = await this.#ask({ what: 'totals' });
    if (answer?.totals !== undefined) this.lastTotals = answer.totals;
    return answer?.totals ?? null;
  }

  /** The remote addresses of its connections (for tests and diagnosis), or null. */
  async remotes(): Promise<string[] | null> {
    return (await this.#ask({ what: 'remotes' }))?.remotes ?? null;
  }

  /** Takes new TLS material for new connections; rejects with the thread's error. */
  async reloadTls(tls: ResolvedServerTls): Promise<void> {
    const answer = await this.#ask({ what: 'tls', tls });
    if (answer?.error !== undefined) throw deserializeError(answer.error);
  }

  /** Hands it the channel to a shard's replacement. */
  replaced(shardId: number, end: AcceptorLinkEnd, error: Error): void {
    if (this.#worker === null || this.#state === 'lost' || this.#state === 'closed') {
      end.port.close();
      return;
    }
    this.#send({ op: 'replaced', shardId, end, error: serializeError(error) }, [end.port]);
  }

  /** Drains its connections (cut after `graceMs`), then ends the thread. */
  async close(graceMs: number): Promise<void> {
    const worker = this.#worker;
    const running = worker !== null && (this.#state === 'starting' || this.#state === 'ready');
    this.#state = 'closing';
    this.#settleReady?.reject(new AcceptorError('PH_ERR_ACCEPTOR_START_FAILED', `acceptor ${this.acceptor} was closed before it listened`));
    if (running) {
      const closed = new Promise<void>((resolve) => (this.#closed = resolve));
      let timer: NodeJS.Timeout | undefined;
      this.#send({ op: 'close', graceMs });
      await Promise.race([closed, this.#exited, new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs + CLOSE_MARGIN_MS)))]);
      clearTimeout(timer);
    }
    this.#state = 'closed';
    await worker?.terminate();
    await this.#exited;
  }

  /** Ends its thread as a crash would. For tests of supervision. */
  async terminate(): Promise<void> {
    await this.#worker?.terminate();
    await this.#exited;
  }

  #start(): void {
    if (this.#state !== 'waiting') return; // closed during the backoff
    this.#state = 'starting';
    const { shards, task, tls } = this.#context;
    const links = shards.openLink(this.link, (shardId, end, error) => this.replaced(shardId, end, error));
    let worker: Worker;
    try {
      const workerData: AcceptorTaskData = { ...task, acceptor: this.acceptor, link: this.link, links, tls: tls() };
      worker = new Worker(ENTRY, { workerData, transferList: links.map((end) => end.port) });
    } catch (err) {
      shards.closeLink(this.link);
      // Not within the constructor: the pool must hold this incarnation before it hears.
      setImmediate(() => this.#fail(new AcceptorError('PH_ERR_ACCEPTOR_START_FAILED', `acceptor ${this.acceptor} could not start: ${errorMessage(err)}`, { cause: err })));
      return;
    }
    this.#worker = worker;
    this.#exited = new Promise<void>((resolve) =>
      worker.once('exit', (code) => {
        shards.closeLink(this.link);
        this.#exit(code);
        resolve();
      }),
    );
    worker.on('message', (message: FromAcceptor) => this.#onMessage(message));
    worker.on('error', (err) => {
      this.#cause ??= new AcceptorError('PH_ERR_ACCEPTOR_CRASHED', `acceptor ${this.acceptor} thread died: ${errorMessage(err)}`, { cause: err });
    });
  }

  #onMessage(message: FromAcceptor): void {
    const { logger, samples } = this.#context;
    switch (message.op) {
      case 'log':
        (logger[message.level] ?? logger.info).call(logger, { ...message.fields, acceptor: this.acceptor }, message.message);
        return;
      case 'samples':
        for (let i = 0; i < message.shard.length; i++) samples.record(message.shard[i] as number, message.size[i] as number, message.seconds[i] as number);
        return;
      case 'answer':
        this.#questions.get(message.id)?.(message);
        return;
      case 'ready':
        this.#threadId = message.threadId;
        this.#tid = message.tid;
        if (this.#state === 'starting') this.#state = 'ready';
        this.#settleReady?.resolve();
        return;
      case 'failed': {
        const cause = deserializeError(message.error);
        this.#cause = new AcceptorError('PH_ERR_ACCEPTOR_START_FAILED', `acceptor ${this.acceptor} could not start: ${cause.message}`, { cause });
        void this.#worker?.terminate();
        return;
      }
      case 'closed':
        this.#closed?.();
    }
  }

  /** The thread is gone: its questions get no answer; unless closed, the incarnation is lost. */
  #exit(code: number): void {
    for (const answer of this.#questions.values()) answer(null);
    this.#questions.clear();
    if (this.#state === 'closing' || this.#state === 'closed') return;
    this.#fail(this.#cause ?? new AcceptorError('PH_ERR_ACCEPTOR_CRASHED', `acceptor ${this.acceptor} thread exited (code ${code})`));
  }

  #fail(error: AcceptorError): void {
    if (this.#state === 'lost') return;
    this.#state = 'lost';
    this.#settleReady?.reject(error);
    this.#context.lost(this, error);
  }

  #ask(question: Question): Promise<Extract<FromAcceptor, { op: 'answer' }> | null> {
    if (this.#worker === null || this.#state !== 'ready') return Promise.resolve(null);
    const id = this.#nextQuestion++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => settle(null), ASK_TIMEOUT_MS);
      const settle = (answer: Extract<FromAcceptor, { op: 'answer' }> | null): void => {
        clearTimeout(timer);
        this.#questions.delete(id);
        resolve(answer);
      };
      this.#questions.set(id, settle);
      this.#send({ op: 'ask', id, ...question });
    });
  }

  #send(message: ToAcceptor, transfer: AcceptorLinkEnd['port'][] = []): void {
    this.#worker?.postMessage(message, transfer);
  }
}
