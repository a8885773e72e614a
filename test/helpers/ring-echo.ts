// A thread for ring tests: answers every batch with its bytes reversed, through a
// RingChannel pair, until it is told to close.
import type { MessagePort } from 'node:worker_threads';
import { ByteRing } from '../../lib/shards/ring.js';
import { RingChannel } from '../../lib/shards/ring-channel.js';

export function start({ port, requests, replies }: { port: MessagePort; requests: SharedArrayBuffer; replies: SharedArrayBuffer }): void {
  const channel: RingChannel = new RingChannel(new ByteRing(replies), new ByteRing(requests), port, (batch) => channel.send(Buffer.from(batch).reverse()));
  port.on('message', (message: Uint8Array | { op: 'close' }) => {
    if (message instanceof Uint8Array) {
      channel.fromPort(Buffer.from(message.buffer, message.byteOffset, message.byteLength));
    } else {
      channel.close();
      port.close();
    }
  });
  void channel.watch();
}
