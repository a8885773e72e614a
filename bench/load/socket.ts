import { type Socket, connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { LoadShape } from './types.js';

/**
 * A generator's connection to the server: plain TCP, or TLS verified against the
 * benchmark's CA (`shape.tlsCa`). Plain sockets read into `readBuffer` through net's
 * `onread` (no allocation per read); TLS sockets, which have no `onread`, through 'data'.
 * `connected` is the event after which the socket carries the protocol.
 */
export function openSocket(shape: LoadShape, port: number, onData: (chunk: Buffer) => void, readBuffer?: Buffer): { socket: Socket; connected: 'connect' | 'secureConnect' } {
  if (shape.tlsCa !== null) {
    const socket = tlsConnect({ host: shape.host, port, ca: Buffer.from(shape.tlsCa) });
    socket.setNoDelay(true);
    socket.on('data', onData);
    return { socket, connected: 'secureConnect' };
  }
  if (readBuffer === undefined) {
    const socket = netConnect({ host: shape.host, port, noDelay: true });
    socket.on('data', onData);
    return { socket, connected: 'connect' };
  }
  const socket = netConnect({
    host: shape.host,
    port,
    noDelay: true,
    onread: {
      buffer: readBuffer,
      callback: (n: number, buf: Uint8Array): boolean => {
        onData((buf as Buffer).subarray(0, n));
        return true;
      },
    },
  });
  return { socket, connected: 'connect' };
}
