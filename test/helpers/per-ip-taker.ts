// A thread for the per-address limit test: takes and releases a place for one address as
// fast as it can, as an acceptor thread would, and counts the moments it held a place
// while another thread held one too (with maxConnectionsPerIp 1, never allowed).
import { parentPort } from 'node:worker_threads';
import { SharedConnections } from '../../lib/session/shared-connections.js';

export interface PerIpTakerData {
  readonly buffer: SharedArrayBuffer;
  readonly acceptors: number;
  readonly acceptor: number;
  /** Int32 words: [0] places held now, [1] times two were held, [2] 1 once all may start. */
  readonly control: SharedArrayBuffer;
  readonly iterations: number;
}

export function start({ buffer, acceptors, acceptor, control, iterations }: PerIpTakerData): void {
  const tally = new SharedConnections(buffer, acceptors).tally(acceptor, 1_000_000, 1);
  const words = new Int32Array(control);
  // Bounded: the others start within a second or this thread goes on alone.
  Atomics.wait(words, 2, 0, 1_000);
  let admitted = 0;
  for (let i = 0; i < iterations; i++) {
    if (tally.take('192.0.2.9') !== 'admitted') continue;
    admitted++;
    if (Atomics.add(words, 0, 1) >= 1) Atomics.add(words, 1, 1);
    // Hold the place a moment, so that the others try meanwhile.
    for (let k = 0; k < 200; k++) Atomics.load(words, 0);
    Atomics.sub(words, 0, 1);
    tally.release('192.0.2.9');
  }
  parentPort?.postMessage(admitted);
}
