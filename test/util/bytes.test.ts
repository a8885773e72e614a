import test from 'ava';
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import { ByteWriter, transferable } from '../../lib/util/bytes.js';

function write(writer: ByteWriter, text: string): void {
  const bytes = Buffer.from(text, 'latin1');
  writer.reserve(bytes.length).set(bytes, writer.length);
  writer.advance(bytes.length);
}

test('transferable(): a slice of the shared pool is copied, so transferring it leaves the pool to the others', (t) => {
  const neighbour = Buffer.from('neighbour');
  const batch = Buffer.from('batch');
  t.is(batch.buffer, neighbour.buffer, 'both are slices of the pool');
  const own = transferable(batch);
  t.not(own.buffer, batch.buffer);
  const { port1, port2 } = new MessageChannel();
  port1.postMessage(own, [own.buffer as ArrayBuffer]);
  const received = receiveMessageOnPort(port2)?.message as Uint8Array;
  port1.close();
  t.is(Buffer.from(received).toString(), 'batch');
  t.is(neighbour.toString(), 'neighbour');
  t.is(batch.toString(), 'batch');
});

test('transferable(): a buffer that spans an ArrayBuffer of its own is sent as it is', (t) => {
  const whole = Buffer.allocUnsafeSlow(16).fill(7);
  t.is(transferable(whole), whole);
  const part = whole.subarray(4);
  t.not(transferable(part).buffer, whole.buffer);
  t.deepEqual(transferable(part), part);
});

test('ByteWriter: what take() gave stays as it was while the writer goes on, and grows past its first size', (t) => {
  const writer = new ByteWriter(8);
  write(writer, 'first');
  const first = writer.take();
  t.is(writer.length, 0);
  write(writer, 'second batch, longer than the first buffer');
  const second = writer.take();
  write(writer, 'x'.repeat(3 << 20));
  const big = writer.take();
  write(writer, 'after');
  t.is(first.toString(), 'first');
  t.is(second.toString(), 'second batch, longer than the first buffer');
  t.is(big.length, 3 << 20);
  t.is(writer.take().toString(), 'after');
});

test('ByteWriter: a buffer grown for a burst of big batches is let go once batches are small again', (t) => {
  const writer = new ByteWriter(256);
  write(writer, 'x'.repeat(200_000));
  writer.take();
  const grown = writer.capacity;
  t.true(grown >= 200_000);
  // A batch of more than a quarter of it keeps the buffer; a small one lets it go.
  write(writer, 'y'.repeat(grown / 2));
  writer.take();
  t.is(writer.capacity, grown);
  write(writer, 'small');
  t.is(writer.take().toString(), 'small');
  t.is(writer.capacity, 256);
  // Small buffers are kept whatever their batches.
  write(writer, 'x'.repeat(1000));
  writer.take();
  const small = writer.capacity;
  writer.take();
  t.is(writer.capacity, small);
});
