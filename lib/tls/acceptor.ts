import type { Socket } from 'node:net';
import { type SecureContextOptions, type Server, type TLSSocket, createServer } from 'node:tls';
import { InvalidOptionError } from '../errors.js';
import type { Pem } from './files.js';
import { type ResolvedServerTls, loadServerTls, reloadServerTls } from './server-tls.js';

// A client that connects and never finishes its handshake is dropped after this long
// (Node's default is two minutes): a handshake takes one or two round trips.
const HANDSHAKE_TIMEOUT_MS = 10_000;

export interface TlsHandlers {
  /**
   * A TCP connection arrived, before any handshake: false turns it away (the handler has
   * closed it), so a client that never finishes a handshake still counts against limits.
   */
  admit(socket: Socket): boolean;
  /** The handshake completed (and with a CA, the client's certificate verified). */
  secure(socket: TLSSocket): void;
  /**
   * The handshake failed: no certificate, an untrusted one, not TLS at all, too slow. For
   * an untrusted certificate Node reports only a hang-up; `socket.authorizationError`
   * then says why it was not trusted.
   */
  failed(error: Error & { code?: string }, socket: TLSSocket): void;
}

/**
 * The TLS side of a server: a node:tls server that either listens itself or is handed
 * sockets accepted elsewhere (`handle()`, as Node lets a 'connection' be injected). Its
 * certificates can be reloaded at any time: connections open keep the context they were
 * made with, new ones get the new one.
 */
export class TlsAcceptor {
  readonly server: Server;
  /** Clients must present a certificate signed by the CA (one was given). */
  readonly clientCertificates: boolean;
  #tls: ResolvedServerTls;
  #material: ResolvedServerTls;

  constructor(tls: ResolvedServerTls, handlers: TlsHandlers) {
    this.#tls = tls;
    this.clientCertificates = tls.ca !== null;
    const context = loadServerTls(tls);
    this.#material = materialOf(context);
    this.server = createServer({
      ...context,
      requestCert: this.clientCertificates,
      rejectUnauthorized: this.clientCertificates,
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
      // Not allowHalfOpen: a peer that leaves mid-handshake must end the socket here (it
      // would otherwise sit half-open, never secure, never failed). A connection that
      // reaches the protocol turns half-open on itself.
      noDelay: true,
    });
    // The TLS server wraps each TCP connection as it arrives; admission comes first, so
    // its own 'connection' listener runs behind ours, for admitted sockets only.
    const wrap = this.server.listeners('connection');
    if (wrap.length !== 1) throw new Error(`node:tls Server has ${wrap.length} connection listeners, expected its own one`);
    const tlsConnection = wrap[0] as (socket: Socket) => void;
    this.server.removeAllListeners('connection');
    this.server.on('connection', (socket: Socket) => {
      if (handlers.admit(socket)) tlsConnection.call(this.server, socket);
    });
    this.server.on('secureConnection', (socket: TLSSocket) => handlers.secure(socket));
    this.server.on('tlsClientError', (error: Error, socket: TLSSocket) => {
      handlers.failed(error, socket);
      // Node has ended it already; this only makes sure.
      socket.destroy();
    });
  }

  /**
   * The certificate, key and CA in use, as PEM (files already read): what another
   * thread's acceptor takes so that every thread serves the very same certificates.
   */
  get material(): ResolvedServerTls {
    return this.#material;
  }

  /** Runs the TLS handshake on a socket the host accepted itself. */
  handle(socket: Socket): void {
    this.server.emit('connection', socket);
  }

  /**
   * Reads the certificate files again (or takes `next` instead) and uses them for new
   * connections. On any error the old certificates stay in use and this rejects.
   */
  async reload(next?: ResolvedServerTls): Promise<void> {
    const tls = next ?? this.#tls;
    // requestCert is fixed when the server is made: a reload can change which CA, not whether one.
    if ((tls.ca !== null) !== this.clientCertificates) {
      throw new InvalidOptionError(`a reload cannot ${this.clientCertificates ? 'remove the CA' : 'add a CA'}: client certificates are ${this.clientCertificates ? 'required' : 'not asked for'} by this server`);
    }
    const context = await reloadServerTls(tls);
    this.server.setSecureContext(context);
    this.#tls = tls;
    this.#material = materialOf(context);
  }
}

/** Secure context options back as PEM sources. */
function materialOf(context: SecureContextOptions): ResolvedServerTls {
  return {
    cert: { pem: context.cert as Pem },
    key: { pem: context.key as Pem },
    ca: context.ca === undefined ? null : { pem: context.ca as Pem | Pem[] },
    passphrase: context.passphrase,
  };
}
