import { type Server as NetServer, type Socket, createServer as createNetServer } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from '../logger.js';
import { usernameProblem } from '../protocol/username.js';
import { Connection, type ConnectionContext, type ConnectionLimits } from '../session/connection.js';
import { ConnectionGuard, type ConnectionGuardOptions } from '../session/connection-guard.js';
import { Backlog } from '../session/backlog.js';
import { SessionCounters } from '../session/counters.js';
import type { ShardRouter } from '../shards/router.js';
import { TlsAcceptor } from '../tls/acceptor.js';
import { certificateName } from '../tls/identity.js';
import type { ResolvedServerTls } from '../tls/server-tls.js';
import { remoteAddress } from '../util/remote-address.js';

// As big as Node's own reads: one read takes what the kernel has, up to this.
const READ_BUFFER_BYTES = 64 * 1024;

export interface AcceptorSettings {
  readonly limits: ConnectionLimits;
  readonly guard: ConnectionGuardOptions;
  /** Serve TLS only, with this material; null: plain TCP. */
  readonly tls: ResolvedServerTls | null;
  readonly logger: Logger;
}

/**
 * The connections of one acceptor thread: it admits each socket (or turns it away: the
 * server is closing, a limit is reached, a TLS handshake fails), runs the TLS identity
 * rule, and serves the rest as Connections over its own router. The thread that calls
 * listen() has one; so does every further acceptor thread, with the very same code.
 */
export class SessionAcceptor {
  readonly counters = new SessionCounters();
  readonly guard: ConnectionGuard;
  readonly router: ShardRouter;
  readonly #limits: ConnectionLimits;
  readonly #logger: Logger;
  readonly #tls: TlsAcceptor | null;
  readonly #connections = new Set<Connection>();
  readonly #backlog = new Backlog();
  // The read buffer every plain TCP connection this acceptor accepted shares: a read is
  // handed on before the next one happens (session/read-buffer.ts). TLS reads do not use it.
  #readBuffer: Buffer | null = null;
  #closing = false;
  #drained: (() => void) | null = null;

  constructor(router: ShardRouter, settings: AcceptorSettings) {
    this.router = router;
    this.#limits = settings.limits;
    this.#logger = settings.logger;
    this.guard = new ConnectionGuard(settings.guard);
    // Certificate files are read here, so a bad one fails at once, not at a client.
    this.#tls =
      settings.tls === null
        ? null
        : new TlsAcceptor(settings.tls, {
            admit: (socket) => this.#admit(socket),
            secure: (socket) => this.#secured(socket),
            failed: (err, socket) => this.#handshakeFailed(err, socket),
          });
  }

  /** Connections open on this acceptor now. */
  get open(): number {
    return this.#connections.size;
  }

  /** The TLS material in use, as PEM, or null without TLS. */
  get tlsMaterial(): ResolvedServerTls | null {
    return this.#tls?.material ?? null;
  }

  /** A server to listen with: the TLS server (limits, then the handshake), or a plain TCP one. */
  listener(): NetServer {
    // Plain TCP sockets are accepted paused, so their reads can go to the shared read
    // buffer (session/read-buffer.ts) from the first byte.
    if (this.#tls !== null) return this.#tls.server;
    const readBuffer = (this.#readBuffer ??= Buffer.allocUnsafeSlow(READ_BUFFER_BYTES));
    return createNetServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true }, (socket) => {
      if (this.#admit(socket)) this.#serve(socket, null, readBuffer);
    });
  }

  /**
   * Serves a socket accepted elsewhere. With TLS, the raw TCP socket: the handshake runs
   * here, exactly as for a connection the listener accepted.
   */
  handle(socket: Socket): void {
    if (this.#tls !== null) this.#tls.handle(socket);
    else if (this.#admit(socket)) this.#serve(socket, null);
  }

  /** Reads the certificates again (or takes `tls`) for new connections. */
  reloadTls(tls?: ResolvedServerTls): Promise<void> {
    if (this.#tls === null) return Promise.reject(new Error('this acceptor serves no TLS'));
    return this.#tls.reload(tls);
  }

  /** The remote addresses of the connections open now, host:port. */
  remotes(): string[] {
    return [...this.#connections].map((connection) => connection.remote);
  }

  /**
   * Turns new sockets away from now on, answers what the open connections sent (they
   * close after their replies) and resolves once all are closed; those still open after
   * `graceMs` are cut.
   */
  async drain(graceMs: number): Promise<void> {
    this.#closing = true;
    const drained = this.#connections.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => (this.#drained = resolve));
    for (const connection of this.#connections) connection.shutdown();
    const grace = setTimeout(() => {
      for (const connection of this.#connections) connection.destroy();
    }, graceMs);
    await drained;
    clearTimeout(grace);
  }

  /** A new TCP connection: let in, or (closing, over a limit) closed at once, unanswered, counted and logged. */
  #admit(socket: Socket): boolean {
    return !this.#refuseIfClosing(socket) && this.guard.admit(socket);
  }

  #refuseIfClosing(socket: Socket): boolean {
    if (!this.#closing) return false;
    this.counters.rejected.closing++;
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
        this.counters.rejected.no_identity++;
        this.#logger.warn({ remote: remoteAddress(socket), certificate: name ?? undefined }, `client certificate refused: ${problem}, so it names no user; connection closed`);
        socket.destroy();
        return;
      }
      identity = Buffer.from(name as string, 'latin1');
    }
    this.#serve(socket, identity);
  }

  #handshakeFailed(err: Error & { code?: string }, socket: TLSSocket): void {
    this.counters.rejected.tls_handshake++;
    // Node ends a connection whose certificate did not verify with a bare hang-up; the
    // reason is on the socket. Debug, not warn: anyone who can reach the port can fail a
    // handshake, as often as they like.
    const refused = socket.authorizationError ?? null;
    const code = refused === null ? err.code : String(refused);
    const why = refused === null ? err.message : `client certificate not accepted (${code})`;
    this.#logger.debug?.({ code, remote: remoteAddress(socket) }, `TLS handshake failed: ${why}`);
  }

  #serve(socket: Socket, identity: Buffer | null, sharedReadBuffer: Buffer | null = null): void {
    this.counters.accepted++;
    const context: ConnectionContext = { guard: this.guard, counters: this.counters, identity, logger: this.#logger, sharedReadBuffer, backlog: this.#backlog };
    const connection = new Connection(socket, this.router, this.#limits, context, (closed) => {
      this.#connections.delete(closed);
      if (this.#connections.size === 0) this.#drained?.();
    });
    this.#connections.add(connection);
  }
}
