import { randomInt } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import { threadId } from 'node:worker_threads';
import type { Registry } from 'prom-client';
import { SessionAcceptor } from './acceptors/acceptor.js';
import { AcceptBalance } from './acceptors/balance.js';
import type { AcceptorInfo, AcceptorTaskData, ListenTarget } from './acceptors/messages.js';
import { AcceptorPool, type AcceptorRemotes } from './acceptors/pool.js';
import { listeningDescriptor, reusePortOptions, sharingMode } from './acceptors/shared-port.js';
import { sumTotals, totalsOf } from './acceptors/totals.js';
import { InvalidOptionError, ServerStateError, errorMessage } from './errors.js';
import type { Health } from './metrics/http.js';
import { type CounterTotals, createMetricsRegistry } from './metrics/registry.js';
import { type ResolvedOptions, type ServerOptions, acceptorShare, resolveOptions } from './options.js';
import { DEFAULT_HOST, DEFAULT_PORT } from './protocol/defaults.js';
import type { LimitCounts } from './session/connection-guard.js';
import { SharedConnections } from './session/shared-connections.js';
import type { ShardBackend, ShardInfo } from './shards/backend.js';
import { InlineShards } from './shards/inline-shards.js';
import type { ShardConfig } from './shards/messages.js';
import { ShardRouter } from './shards/router.js';
import { WorkerShards } from './shards/worker-shards.js';
import { prepareDataDir } from './store/data-dir.js';
import { type ServerTlsOptions, resolveServerTls } from './tls/server-tls.js';
import { checkHost, checkOptionNames, integerOption } from './util/check-options.js';
import { osThreadId } from './util/os-thread-id.js';

export { DEFAULT_HOST, DEFAULT_PORT } from './protocol/defaults.js';
export type { AcceptorInfo } from './acceptors/messages.js';

export interface ListenOptions {
  /** Default 4000; 0 picks a free port (see the resolved address). */
  port?: number;
  /** Default 127.0.0.1: the server is reachable from a network only when asked. */
  host?: string;
}

const LISTEN_OPTIONS: readonly (keyof ListenOptions)[] = ['port', 'host'];

// How long close() lets connected clients take their last replies before cutting them.
const CLOSE_GRACE_MS = 5_000;

/** Reaches the shard backend from tests (supervision); not part of the public API. */
export const kShardBackend = Symbol('pigeonhole.shardBackend');
/** Reaches the further acceptor threads from tests (supervision); not part of the public API. */
export const kAcceptorPool = Symbol('pigeonhole.acceptorPool');
/** Where each connection is served, by acceptor thread; for tests and diagnosis, not part of the public API. */
export const kAcceptorRemotes = Symbol('pigeonhole.acceptorRemotes');

type Lifecycle = 'new' | 'starting' | 'running' | 'closing' | 'closed';

/**
 * A pigeonhole server: acceptor threads (the calling thread, and with `acceptors` > 1
 * further worker threads on the same port) in front of mailbox shards on worker threads
 * (or inline, `shards: 0`). Lifecycle: new -> starting -> running -> closing -> closed;
 * shards start with the first listen() or handle(), further acceptors with listen().
 */
export class PigeonholeServer {
  readonly options: Readonly<ResolvedOptions>;
  readonly [kShardBackend]: ShardBackend;
  readonly [kAcceptorPool]: AcceptorPool | null;
  readonly #router: ShardRouter;
  // This thread's connections: acceptor 0.
  readonly #acceptor: SessionAcceptor;
  // With several acceptor threads: the counts they share.
  readonly #shared: SharedConnections | null;
  // The same for every acceptor thread: its router's and its guard's settings.
  readonly #routing: Pick<AcceptorTaskData, 'replay' | 'sharedStore'>;
  readonly #guardLimits: AcceptorTaskData['guard'];
  readonly #tid = osThreadId();
  #metrics: Registry | null = null;
  #netServer: NetServer | null = null;
  #config: ShardConfig | null = null;
  #listening = false;
  #state: Lifecycle = 'new';
  #started: Promise<void> | null = null;
  #closed: Promise<void> | null = null;
  #releaseDataDir: (() => void) | null = null;

  constructor(options: ServerOptions = {}) {
    this.options = Object.freeze(resolveOptions(options));
    const { shards, acceptors, logger, dataDir, redis, shardTransport, maxConnections, maxConnectionsPerIp, maxConnectionRatePerIp, lineTimeoutMs, maxLineBufferBytes, maxReplyBufferBytes, tls } = this.options;
    const backend: ShardBackend = shards === 0 ? new InlineShards(logger) : new WorkerShards(shards, logger, shardTransport);
    this[kShardBackend] = backend;
    this.#routing = { replay: dataDir !== undefined, sharedStore: redis !== undefined };
    this.#router = new ShardRouter(backend, { ...this.#routing, logger });
    const shared = acceptors > 1 ? SharedConnections.create(acceptors) : null;
    this.#shared = shared;
    this.#guardLimits = { maxConnections, maxConnectionsPerIp, maxConnectionRatePerIp, lineTimeoutMs, maxLineBufferBytes: acceptorShare(maxLineBufferBytes, acceptors), maxReplyBufferBytes: acceptorShare(maxReplyBufferBytes, acceptors) };
    // Certificate files are read here, so a bad one fails createServer(), not a client.
    this.#acceptor = new SessionAcceptor(this.#router, {
      limits: this.options,
      guard: {
        ...this.#guardLimits,
        logger,
        tally: shared?.tally(0, maxConnections, maxConnectionsPerIp),
        rate: shared?.rate(maxConnectionRatePerIp),
        counts: shared?.limitCounts(0),
      },
      tls,
      logger,
    });
    this[kAcceptorPool] =
      shared === null
        ? null
        : new AcceptorPool({ acceptors, shards: backend as WorkerShards, connections: shared, logger, tls: () => this.#acceptor.tlsMaterial });
  }

  /**
   * The server's metrics (names start with `pigeonhole_`), made on first use; with
   * several acceptor threads, each read sums all of theirs. A host can serve them itself
   * or merge them into its own registry with prom-client's `Registry.merge([...])`;
   * `pigeonhole serve --metrics` serves them over HTTP.
   */
  get metrics(): Registry {
    const pool = this[kAcceptorPool];
    this.#metrics ??= createMetricsRegistry({
      totals: () => this.#totals(),
      samples: pool === null ? [this.#router.counters.batches] : [this.#router.counters.batches, pool.samples],
      shards: () => this.#router.describe(),
      acceptors: () => this.acceptors(),
      storeStats: () => this.#router.stats(),
    });
    return this.#metrics;
  }

  /** How many connections each limit has closed so far (see ServerOptions), on every acceptor thread. */
  get limitCounts(): Readonly<LimitCounts> {
    return this.#shared?.limitTotals() ?? this.#acceptor.guard.counts;
  }

  /** Whether the server can serve: running, with every shard ready (not starting or restarting). */
  health(): Health {
    if (this.#state !== 'running') return { ok: false, status: this.#state === 'new' ? 'not started' : this.#state };
    const down = this.#router.describe().filter((shard) => !shard.ready);
    if (down.length > 0) return { ok: false, status: `shard${down.length === 1 ? '' : 's'} ${down.map((shard) => shard.shardId).join(', ')} not ready` };
    return { ok: true, status: 'ok' };
  }

  /**
   * Reads the TLS certificate, key and CA files again (or takes `tls` instead) for new
   * connections, on every acceptor thread; connections already open carry on. If anything
   * cannot be read or used, this rejects and the certificates in use stay.
   */
  async reloadTls(tls?: ServerTlsOptions): Promise<void> {
    if (this.options.tls === null) throw new InvalidOptionError('reloadTls(): this server was created without tls');
    await this.#acceptor.reloadTls(tls === undefined ? undefined : resolveServerTls(tls));
    const material = this.#acceptor.tlsMaterial;
    if (material !== null) await this[kAcceptorPool]?.reloadTls(material);
  }

  /** Where the server listens, once listen() has resolved. */
  get address(): AddressInfo | null {
    const address = this.#netServer?.address();
    return address !== null && typeof address === 'object' ? address : null;
  }

  /**
   * Starts the shards (if not yet) and accepts connections on host:port, with every
   * acceptor thread. If the shards or an acceptor thread cannot start, the server is
   * closed and this rejects. If only the port cannot be bound (EADDRINUSE, say), the
   * shards stay up so listen() may be tried again; call close() to give up.
   */
  async listen(options: ListenOptions = {}): Promise<AddressInfo> {
    checkOptionNames(options, LISTEN_OPTIONS, 'listen()');
    const { port = DEFAULT_PORT, host = DEFAULT_HOST } = options;
    integerOption('port', port, 0, 65_535);
    checkHost(host);
    if (this.#state === 'closing' || this.#state === 'closed') throw new ServerStateError('PH_ERR_SERVER_CLOSED');
    // Taken before the first await, so two listen() calls at once cannot both pass.
    if (this.#listening) throw new ServerStateError('PH_ERR_SERVER_LISTENING');
    this.#listening = true;
    try {
      await this.#start();
    } catch (err) {
      // Shards that did start are ended, so a failed listen() leaves no thread behind.
      await this.close();
      throw err;
    }
    // close() may have run while the shards started: it found nothing listening to close.
    if (this.#closingOrClosed()) throw new ServerStateError('PH_ERR_SERVER_CLOSED');
    // With TLS the TLS server listens itself (limits first, then the handshake).
    const netServer = this.#acceptor.listener();
    this.#netServer = netServer;
    const pool = this[kAcceptorPool];
    const mode = pool === null ? null : sharingMode();
    netServer.listen(mode === 'reuse-port' ? reusePortOptions(port, host) : { port, host });
    try {
      await once(netServer, 'listening');
    } catch (err) {
      this.#netServer = null;
      this.#listening = false;
      throw err;
    }
    if (this.#closingOrClosed()) return this.#abandonListen(netServer);
    // Once listening, an error is a failed accept (EMFILE, say): logged, and the server goes on.
    netServer.on('error', (err) => this.#acceptor.guard.acceptFailed(err));
    this.#acceptor.guard.checkDescriptors();
    if (pool !== null && this.#shared !== null) {
      const address = this.address as AddressInfo;
      const target: ListenTarget = mode === 'reuse-port' ? { kind: 'reuse-port', host, port: address.port } : { kind: 'descriptor', fd: listeningDescriptor(netServer) };
      // Threads that take turns at one socket keep their shares even (see AcceptBalance).
      const balance = target.kind === 'descriptor';
      if (balance) AcceptBalance.keep(netServer, this.#shared, 0);
      try {
        await pool.start(this.#acceptorTask(target, balance));
      } catch (err) {
        await this.close();
        throw err;
      }
      if (this.#closingOrClosed()) return this.#abandonListen(netServer);
    }
    return this.address as AddressInfo;
  }

  #closingOrClosed(): boolean {
    return this.#state === 'closing' || this.#state === 'closed';
  }

  /**
   * close() ran while listen() waited, and closed what existed then: what listen() set
   * up since (the listening socket, acceptor threads) is closed here, and listen() fails
   * as it would after close().
   */
  async #abandonListen(netServer: NetServer): Promise<never> {
    await new Promise<void>((resolve) => netServer.close(() => resolve()));
    if (this.#netServer === netServer) this.#netServer = null;
    await this[kAcceptorPool]?.close(CLOSE_GRACE_MS);
    throw new ServerStateError('PH_ERR_SERVER_CLOSED');
  }

  /**
   * Serves a socket that the host application accepted itself, on the calling thread.
   * With `tls`, pass the raw TCP socket: the server runs the TLS handshake on it (and
   * checks the client's certificate) exactly as for a connection it accepted.
   */
  handle(socket: Socket): void {
    if (this.#state === 'new') {
      // No listen() to reject here: a server whose shards cannot start reports it and
      // closes, dropping the sockets it was handed.
      this.#start().catch((err: unknown) => {
        this.options.logger.error({ code: (err as { code?: string }).code }, `cannot serve: ${errorMessage(err)}`);
        void this.close();
      });
    }
    this.#acceptor.handle(socket);
  }

  /** The shards and the threads they run on. */
  shards(): ShardInfo[] {
    return this.#router.describe();
  }

  /** The acceptor threads: 0 is the one that called listen(), the others are worker threads. */
  acceptors(): AcceptorInfo[] {
    const listening: AcceptorInfo = { acceptor: 0, threadId, tid: this.#tid, restarts: 0, ready: this.#state === 'running' };
    return [listening, ...(this[kAcceptorPool]?.describe() ?? [])];
  }

  /** Every acceptor thread's connections, as the peers' host:port (asked of each thread). */
  async [kAcceptorRemotes](): Promise<AcceptorRemotes[]> {
    const mine: AcceptorRemotes = { acceptor: 0, threadId, remotes: this.#acceptor.remotes() };
    return [mine, ...((await this[kAcceptorPool]?.remotes()) ?? [])];
  }

  /**
   * Stops accepting, answers the commands in flight, closes every connection (on every
   * acceptor thread), ends the shards and resolves once every worker thread has exited.
   */
  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  #start(): Promise<void> {
    if (this.#started === null) {
      if (this.#state !== 'new') return Promise.reject(new ServerStateError('PH_ERR_SERVER_CLOSED'));
      this.#state = 'starting';
      this.#started = Promise.resolve()
        .then(() => {
          this.#config = this.#shardConfig();
          return this.#router.start(this.#config);
        })
        .then(() => {
          if (this.#state === 'starting') this.#state = 'running';
        });
    }
    return this.#started;
  }

  /** Where the shards keep mailboxes; lays out (or migrates) the data directory. */
  #shardConfig(): ShardConfig {
    const { dataDir, maxMessagesPerUser, fsync, maxStoreBytes, minFreeDiskBytes, logger, redis } = this.options;
    if (redis !== undefined) return { maxMessagesPerUser, store: { kind: 'redis', ...redis } };
    const shards = this[kShardBackend].size;
    // The cap is the server's; each shard holds its share.
    const maxBytes = maxStoreBytes === undefined ? undefined : Math.max(1, Math.floor(maxStoreBytes / shards));
    if (dataDir === undefined) return { maxMessagesPerUser, store: { kind: 'memory', maxBytes } };
    const { files, disk, release } = prepareDataDir(dataDir, shards, logger, { minFreeBytes: minFreeDiskBytes });
    this.#releaseDataDir = release;
    const epoch = randomInt(1, 2 ** 31);
    return { maxMessagesPerUser, store: { kind: 'sqlite', files, fsync, epoch, maxBytes, dataDir, disk } };
  }

  /** What every further acceptor thread starts with. */
  #acceptorTask(listen: ListenTarget, balance: boolean): Parameters<AcceptorPool['start']>[0] {
    const { acceptors, maxLineBytes, idleTimeoutMs, maxInFlight, logger } = this.options;
    return {
      acceptors,
      listen,
      balance,
      connections: (this.#shared as SharedConnections).buffer,
      batchesInFlight: this[kShardBackend].batchesInFlight,
      config: this.#config as ShardConfig,
      ...this.#routing,
      limits: { maxLineBytes, idleTimeoutMs, maxInFlight },
      guard: this.#guardLimits,
      debug: logger.debug !== undefined,
    };
  }

  /** Every acceptor thread's counters, summed (the others are asked over their ports). */
  async #totals(): Promise<CounterTotals> {
    const mine = totalsOf(this.#acceptor);
    const pool = this[kAcceptorPool];
    if (pool === null || this.#shared === null) return mine;
    return sumTotals([mine, ...(await pool.totals())], this.#shared.limitTotals());
  }

  async #close(): Promise<void> {
    const wasStarted = this.#started !== null;
    this.#state = 'closing';
    const netServer = this.#netServer;
    const stopped = netServer === null ? Promise.resolve() : new Promise<void>((resolve) => netServer.close(() => resolve()));
    // Every acceptor thread drains before the shards close: their last batches need answers.
    await Promise.all([stopped, this.#acceptor.drain(CLOSE_GRACE_MS), this[kAcceptorPool]?.close(CLOSE_GRACE_MS)]);
    if (wasStarted) {
      await this.#started?.catch(() => {});
      await this.#router.close();
    }
    this.#acceptor.guard.close();
    // Only once every shard has closed its database file.
    this.#releaseDataDir?.();
    this.#state = 'closed';
  }
}

/** Creates a server; options are checked here, before anything starts. */
export function createServer(options?: ServerOptions): PigeonholeServer {
  return new PigeonholeServer(options);
}
