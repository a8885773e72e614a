import type { Socket } from 'node:net';

// net's own symbols for the two slots, the same on every socket: looked up once.
let slotSymbols: readonly [symbol, symbol] | null | undefined;

function findSlots(socket: Socket): readonly [symbol, symbol] | null {
  const symbols = Object.getOwnPropertySymbols(socket);
  const kBuffer = symbols.find((symbol) => symbol.description === 'kBuffer');
  const kBufferCb = symbols.find((symbol) => symbol.description === 'kBufferCb');
  return kBuffer === undefined || kBufferCb === undefined ? null : [kBuffer, kBufferCb];
}

/**
 * Reads of sockets the server accepted itself land in one buffer shared by every
 * connection and reach the connection directly, as net.Socket's `onread` option does:
 * no memory allocated per read (the connection gets a view of the shared buffer), no
 * stream machinery, no 'data' event. At one command per read (a client that waits for
 * each reply) that is a good part of the server's own CPU per command (bench/RESULTS.md).
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
  slotSymbols ??= findSlots(socket);
  if (slotSymbols === null) return false;
  const [kBuffer, kBufferCb] = slotSymbols;
  const slots = socket as unknown as Record<symbol, unknown>;
  slots[kBuffer] = buffer;
  slots[kBufferCb] = (bytes: number): boolean => {
    onRead(buffer.subarray(0, bytes));
    return true;
  };
  handle.useUserBuffer(buffer);
  return true;
}
