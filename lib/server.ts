import { randomInt } from 'node:crypto';
import { once } from 'node:events';
import { type AddressInfo, type Server as NetServer, type Socket, createServer as createNetServer } from 'node:net';
import { ServerStateError, errorMessage } from './errors.js';
import { type ResolvedOptions, type ServerOptions, resolveOptions } from './options.js';
import { DEFAULT_HOST, DEFAULT_PORT } from './protocol/defaults.js';
import { Connection } from './session/connection.js';
import type { ShardBackend, ShardInfo } from './shards/backend.js';
import { InlineShards } from './shards/inline-shards.js';
import type { ShardConfig } from './shards/messages.js';
import { ShardRouter } from './shards/router.js';
import { WorkerShards } from './shards/worker-shards.js';
import { prepareDataDir } from './store/data-dir.js';
import { checkHost, integerOption } from './util/check-options.js';

export { DEFAULT_HOST, DEFAULT_PORT } from './protocol/defaults.js';

export interface ListenOptions {
  /** Default 4000; 0 picks a free port (see the resolved address). */
  port?: number;
  /** Default 127.0.0.1: the server is reachable from a network only when asked. */
  host?: string;
}

// How long close() lets connected clients take their last replies before cutting them.
const CLOSE_GRACE_MS = 5_000;

/** Reaches the shard backend from tests (supervision); not part of the public API. */
export const kShardBackend = Symbol('pigeonhole.shardBackend');

type Lifecycle = 'new' | 'starting' | 'running' | 'closing' | 'closed';

/**
 * A pigeonhole server: an acceptor on the calling thread and mailbox shards on worker
 * threads (or inline, `shards: 0`). Lifecycle: new -> starting -> running -> closing ->
 * closed; shards start with the first listen() or handle().
 */
export class PigeonholeServer {
  readonly options: Readonly<ResolvedOptions>;
  readonly [kShardBackend]: ShardBackend;
  readonly #router: ShardRouter;
  readonly #connections = new Set<Connection>();
  #netServer: NetServer | null = null;
  #listening = false;
  #state: Lifecycle = 'new';
  #started: Promise<void> | null = null;
  #closed: Promise<void> | null = null;
  #drained: (() => void) | null = null;
  #releaseDataDir: (() => void) | null = null;

  constructor(options: ServerOptions = {}) {
    this.options = Object.freeze(resolveOptions(options));
    const { shards, logger, dataDir, redis } = this.options;
    const backend: ShardBackend = shards === 0 ? new InlineShards(logger) : new WorkerShards(shards, logger);
    this[kShardBackend] = backend;
    this.#router = new ShardRouter(backend, { replay: dataDir !== undefined, sharedStore: redis !== undefined, logger });
  }

  /** Where the server listens, once listen() has resolved. */
  get address(): AddressInfo | null {
    const address = this.#netServer?.address();
    return address !== null && typeof address === 'object' ? address : null;
  }

  /**
   * Starts the shards (if not yet) and accepts connections on host:port. If the shards
   * cannot start, the server is closed and this rejects. If only the port cannot be
   * bound (EADDRINUSE, say), the shards stay up so listen() may be tried again; call
   * close() to give up.
   */
  async listen({ port = DEFAULT_PORT, host = DEFAULT_HOST }: ListenOptions = {}): Promise<AddressInfo> {
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
    const netServer = createNetServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.handle(socket));
    this.#netServer = netServer;
    netServer.listen(port, host);
    try {
      await once(netServer, 'listening');
    } catch (err) {
      this.#netServer = null;
      this.#listening = false;
      throw err;
    }
    return this.address as AddressInfo;
  }

  /** Serves a socket that the host application accepted itself. */
  handle(socket: Socket): void {
    if (this.#state === 'closing' || this.#state === 'closed') {
      socket.destroy();
      return;
    }
    if (this.#state === 'new') {
      // No listen() to reject here: a server whose shards cannot start reports it and
      // closes, dropping the sockets it was handed.
      this.#start().catch((err: unknown) => {
        this.options.logger.error({ code: (err as { code?: string }).code }, `cannot serve: ${errorMessage(err)}`);
        void this.close();
      });
    }
    const connection = new Connection(socket, this.#router, this.options, (closed) => {
      this.#connections.delete(closed);
      if (this.#connections.size === 0) this.#drained?.();
    });
    this.#connections.add(connection);
  }

  /** The shards and the threads they run on. */
  shards(): ShardInfo[] {
    return this.#router.describe();
  }

  /**
   * Stops accepting, answers the commands in flight, closes every connection, ends the
   * shards and resolves once every worker thread has exited.
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
        .then(() => this.#router.start(this.#shardConfig()))
        .then(() => {
          if (this.#state === 'starting') this.#state = 'running';
        });
    }
    return this.#started;
  }

  /** Where the shards keep mailboxes; lays out (or migrates) the data directory. */
  #shardConfig(): ShardConfig {
    const { dataDir, maxMessagesPerUser, fsync, maxStoreBytes, logger, redis } = this.options;
    if (redis !== undefined) return { maxMessagesPerUser, store: { kind: 'redis', ...redis } };
    if (dataDir === undefined) return { maxMessagesPerUser, store: { kind: 'memory' } };
    const { files, release } = prepareDataDir(dataDir, this[kShardBackend].size, logger);
    this.#releaseDataDir = release;
    const epoch = randomInt(1, 2 ** 31);
    return { maxMessagesPerUser, store: { kind: 'sqlite', files, fsync, epoch, maxBytes: maxStoreBytes } };
  }

  async #close(): Promise<void> {
    const wasStarted = this.#started !== null;
    this.#state = 'closing';
    const netServer = this.#netServer;
    const stopped = netServer === null ? Promise.resolve() : new Promise<void>((resolve) => netServer.close(() => resolve()));
    const drained = this.#connections.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => (this.#drained = resolve));
    for (const connection of this.#connections) connection.shutdown();
    const grace = setTimeout(() => {
      for (const connection of this.#connections) connection.destroy();
    }, CLOSE_GRACE_MS);
    await Promise.all([stopped, drained]);
    clearTimeout(grace);
    if (wasStarted) {
      await this.#started?.catch(() => {});
      await this.#router.close();
    }
    // Only once every shard has closed its database file.
    this.#releaseDataDir?.();
    this.#state = 'closed';
  }
}

/** Creates a server; options are checked here, before anything starts. */
export function createServer(options?: ServerOptions): PigeonholeServer {
  return new PigeonholeServer(options);
}
