import { randomInt } from 'node:crypto';
import { once } from 'node:events';
import { type AddressInfo, type Server as NetServer, type Socket, createServer as createNetServer } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Registry } from 'prom-client';
import { InvalidOptionError, ServerStateError, errorMessage } from './errors.js';
import type { Health } from './metrics/http.js';
import { createMetricsRegistry } from './metrics/registry.js';
import { type ResolvedOptions, type ServerOptions, resolveOptions } from './options.js';
import { DEFAULT_HOST, DEFAULT_PORT } from './protocol/defaults.js';
import { usernameProblem } from './protocol/username.js';
import { Connection, type ConnectionContext } from './session/connection.js';
import { ConnectionGuard, type LimitCounts } from './session/connection-guard.js';
import { SessionCounters } from './session/counters.js';
import type { ShardBackend, ShardInfo } from './shards/backend.js';
import { InlineShards } from './shards/inline-shards.js';
import type { ShardConfig } from './shards/messages.js';
import { ShardRouter } from './shards/router.js';
import { WorkerShards } from './shards/worker-shards.js';
import { prepareDataDir } from './store/data-dir.js';
import { TlsAcceptor } from './tls/acceptor.js';
import { certificateName } from './tls/identity.js';
import { type ServerTlsOptions, resolveServerTls } from './tls/server-tls.js';
import { checkHost, integerOption } from './util/check-options.js';
import { remoteAddress } from './util/remote-address.js';

export { DEFAULT_HOST, DEFAULT_PORT } from './protocol/defaults.js';

export interface ListenOptions {
  /** Default 4000; 0 picks a free port (see the resolved address). */
  port?: number;
  /** Default 127.0.0.1: the server is reachable from a network only when asked. */
  host?: string;
}

// As big as Node's own reads: one read takes what the kernel has, up to this.
const READ_BUFFER_BYTES = 64 * 1024;

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
  readonly #counters = new SessionCounters();
  readonly #guard: ConnectionGuard;
  // The read buffer every plain TCP connection this server accepted shares: a read is
  // handed on before the next one happens (session/read-buffer.ts).
  readonly #readBuffer = Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
  readonly #tls: TlsAcceptor | null;
  #metrics: Registry | null = null;
  #netServer: NetServer | null = null;
  #listening = false;
  #state: Lifecycle = 'new';
  #started: Promise<void> | null = null;
  #closed: Promise<void> | null = null;
  #drained: (() => void) | null = null;
  #releaseDataDir: (() => void) | null = null;

  constructor(options: ServerOptions = {}) {
    this.options = Object.freeze(resolveOptions(options));
    const { shards, logger, dataDir, redis, shardTransport } = this.options;
    const backend: ShardBackend = shards === 0 ? new InlineShards(logger) : new WorkerShards(shards, logger, shardTransport);
    this[kShardBackend] = backend;
    this.#router = new ShardRouter(backend, { replay: dataDir !== undefined, sharedStore: redis !== undefined, logger });
    this.#guard = new ConnectionGuard(this.options);
    // Certificate files are read here, so a bad one fails createServer(), not a client.
    this.#tls =
      this.options.tls === null
        ? null
        : new TlsAcceptor(this.options.tls, {
            admit: (socket) => this.#admit(socket),
            secure: (socket) => this.#secured(socket),
            failed: (err, socket) => this.#handshakeFailed(err, socket),
          });
  }

  /**
   * The server's metrics (names start with `pigeonhole_`), made on first use. A host can
   * serve them itself or merge them into its own registry with prom-client's
   * `Registry.merge([...])`; `pigeonhole serve --metrics` serves them over HTTP.
   */
  get metrics(): Registry {
    this.#metrics ??= createMetricsRegistry({
      session: this.#counters,
      limits: this.#guard.counts,
      replies: this.#router.counters,
      openConnections: () => this.#connections.size,
      shards: () => this.#router.describe(),
      storeStats: () => this.#router.stats(),
    });
    return this.#metrics;
  }

  /** How many connections each limit has closed so far (see ServerOptions). */
  get limitCounts(): Readonly<LimitCounts> {
    return this.#guard.counts;
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
   * connections; connections already open carry on. If anything cannot be read or used,
   * this rejects and the certificates in use stay.
   */
  async reloadTls(tls?: ServerTlsOptions): Promise<void> {
    if (this.#tls === null) throw new InvalidOptionError('reloadTls(): this server was created without tls');
    await this.#tls.reload(tls === undefined ? undefined : resolveServerTls(tls));
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
    // With TLS the TLS server listens itself (limits first, then the handshake); its
    // secured sockets come to #secured().
    // Plain TCP sockets are accepted paused, so their reads can go to the shared read
    // buffer (session/read-buffer.ts) from the first byte.
    const netServer =
      this.#tls?.server ??
      createNetServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true }, (socket) => {
        if (this.#admit(socket)) this.#serve(socket, null, this.#readBuffer);
      });
    this.#netServer = netServer;
    netServer.listen(port, host);
    try {
      await once(netServer, 'listening');
    } catch (err) {
      this.#netServer = null;
      this.#listening = false;
      throw err;
    }
    // Once listening, an error is a failed accept (EMFILE, say): logged, and the server goes on.
    netServer.on('error', (err) => this.#guard.acceptFailed(err));
    this.#guard.checkDescriptors();
    return this.address as AddressInfo;
  }

  /**
   * Serves a socket that the host application accepted itself. With `tls`, pass the raw
   * TCP socket: the server runs the TLS handshake on it (and checks the client's
   * certificate) exactly as for a connection it accepted.
   */
  handle(socket: Socket): void {
    if (this.#tls !== null) this.#tls.handle(socket);
    else if (this.#admit(socket)) this.#serve(socket, null);
  }

  /** A new TCP connection: let in, or (closing, over a limit) closed at once, unanswered, counted and logged. */
  #admit(socket: Socket): boolean {
    return !this.#refuseIfClosing(socket) && this.#guard.admit(socket);
  }

  #refuseIfClosing(socket: Socket): boolean {
    if (this.#state !== 'closing' && this.#state !== 'closed') return false;
    this.#counters.rejected.closing++;
    socket.destroy();
    return true;
  }

  /** A TLS handshake completed: with client certificates, the certificate names the user. */
  #secured(socket: TLSSocket): void {
    if (this.#refuseIfClosing(socket)) return;
    let identity: Buffer | null = null;
    if (this.#tls?.clientCertificates === true) {
      const name = certificateName(socket);
      const problem = name === null ? 'it has no single subject CN' : usernameProblem(name);
      if (problem !== null) {
        this.#counters.rejected.no_identity++;
        this.options.logger.warn({ remote: remoteAddress(socket), certificate: name ?? undefined }, `client certificate refused: ${problem}, so it names no user; connection closed`);
        socket.destroy();
        return;
      }
      identity = Buffer.from(name as string, 'latin1');
    }
    this.#serve(socket, identity);
  }

  #handshakeFailed(err: Error & { code?: string }, socket: TLSSocket): void {
    this.#counters.rejected.tls_handshake++;
    // Node ends a connection whose certificate did not verify with a bare hang-up; the
    // reason is on the socket. Debug, not warn: anyone who can reach the port can fail a
    // handshake, as often as they like.
    const refused = socket.authorizationError ?? null;
    const code = refused === null ? err.code : String(refused);
    const why = refused === null ? err.message : `client certificate not accepted (${code})`;
    this.options.logger.debug?.({ code, remote: remoteAddress(socket) }, `TLS handshake failed: ${why}`);
  }

  #serve(socket: Socket, identity: Buffer | null, sharedReadBuffer: Buffer | null = null): void {
    if (this.#state === 'new') {
      // No listen() to reject here: a server whose shards cannot start reports it and
      // closes, dropping the sockets it was handed.
      this.#start().catch((err: unknown) => {
        this.options.logger.error({ code: (err as { code?: string }).code }, `cannot serve: ${errorMessage(err)}`);
        void this.close();
      });
    }
    this.#counters.accepted++;
    const context: ConnectionContext = { guard: this.#guard, counters: this.#counters, identity, logger: this.options.logger, sharedReadBuffer };
    const connection = new Connection(socket, this.#router, this.options, context, (closed) => {
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
    this.#guard.close();
    // Only once every shard has closed its database file.
    this.#releaseDataDir?.();
    this.#state = 'closed';
  }
}

/** Creates a server; options are checked here, before anything starts. */
export function createServer(options?: ServerOptions): PigeonholeServer {
  return new PigeonholeServer(options);
}
