// TLS connections for tests: a raw line client over TLS, and what a refused one saw.
import { type ConnectionOptions, type TLSSocket, connect } from 'node:tls';
import type { ExecutionContext } from 'ava';
import { HOST, LineClient, REPLY_TIMEOUT_MS } from './line-client.js';

/** A TLS connection as far as it got: the handshake done (client set), or the error that stopped it. */
export interface TlsAttempt {
  readonly socket: TLSSocket;
  readonly client: LineClient | null;
  readonly error: (Error & { code?: string }) | null;
}

/** Connects over TLS to 127.0.0.1:port; settles once the handshake is done or has failed. */
export function tryTls(t: ExecutionContext, port: number, options: ConnectionOptions = {}): Promise<TlsAttempt> {
  const socket = connect({ host: HOST, port, ...options });
  t.teardown(() => socket.destroy());
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no TLS handshake outcome in time')), REPLY_TIMEOUT_MS);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      resolve({ socket, client: new LineClient(socket), error: null });
    });
    const onError = (error: Error): void => {
      clearTimeout(timer);
      resolve({ socket, client: null, error });
    };
    socket.once('error', onError);
  });
}

/** A raw line client over TLS; fails the test if the handshake does not complete. */
export async function connectTls(t: ExecutionContext, port: number, options: ConnectionOptions = {}): Promise<LineClient> {
  const { client, error } = await tryTls(t, port, options);
  if (client === null) throw new Error(`TLS handshake failed: ${error?.message}`);
  return client;
}
