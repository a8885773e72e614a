import type { Socket } from 'node:net';

/**
 * Reads of sockets the server accepted itself land in one buffer shared by every
 * connection and reach the connection directly, as net.Socket's `onread` option does:
 * no Buffer allocated per read, no stream machinery, no 'data' event. At one command
 * per read (a client that waits for each reply) that is a good part of the server's own
 * CPU per command (bench/RESULTS.md).
 *
 * Node 20 gives `onread` only to sockets it constructs for a caller (`new net.Socket`,
 * `net.connect`), not to those a net.Server accepts. A socket accepted paused
 * (`pauseOnConnect`) carries the same two slots `onread` fills, and its handle the
 * native switch to a user buffer; this fills them before its first read. Where they are
 * not found (another Node), nothing is changed and the socket reads as usual: the
 * caller falls back to 'data' events.
 *
 * One buffer serves all connections because a read is handed on before the next one
 * happens: a connection that keeps bytes of it past the callback (it paused mid-chunk)
 * must copy them (LineFramer.detach()).
 */
export function readIntoShared(socket: Socket, buffer: Buffer, onRead: (chunk: Buffer) => void): boolean {
  const handle = (socket as unknown as { _handle?: { useUserBuffer?: (buffer: Uint8Array) => void; reading?: boolean } })._handle;
  if (handle === undefined || typeof handle.useUserBuffer !== 'function' || handle.reading === true) return false;
  const symbols = Object.getOwnPropertySymbols(socket);
  const kBuffer = symbols.find((symbol) => symbol.description === 'kBuffer');
  const kBufferCb = symbols.find((symbol) => symbol.description === 'kBufferCb');
  if (kBuffer === undefined || kBufferCb === undefined) return false;
  const slots = socket as unknown as Record<symbol, unknown>;
  slots[kBuffer] = buffer;
  slots[kBufferCb] = (bytes: number): boolean => {
    onRead(buffer.subarray(0, bytes));
    return true;
  };
  handle.useUserBuffer(buffer);
  return true;
}
