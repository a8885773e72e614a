// A thread for the ring's wake-up test: a producer held up between reading a sleeper's
// flag and clearing it. It waits until the reader says it sleeps, clears the flag and
// notifies at once, as a producer that read the flag of an earlier sleep would when it
// resumes. When its notify woke no one, the reader had set its flag but was not waiting
// yet; it then writes a message through the ring's own code and waits until the reader
// says it got it. Bounded by time: it tries until it has met that moment `wanted` times
// or `seconds` have passed (how often a try meets it depends on the machine's load).
import { parentPort } from 'node:worker_threads';
import { ByteRing, RING_HEADER } from '../../lib/shards/ring.js';

/** What the thread reports when it is done. */
export interface StaleProducerReport {
  /** Tries in which the notify woke no one: the reader's wait began with its flag cleared. */
  readonly caught: number;
  /** Of those, how many messages the reader said it got. */
  readonly received: number;
  readonly attempts: number;
}

export interface StaleProducerData {
  readonly ring: SharedArrayBuffer;
  /** Int32 words: [0] messages the reader got, counted up by the reader. */
  readonly control: SharedArrayBuffer;
  readonly wanted: number;
  readonly seconds: number;
}

export function start({ ring, control, wanted, seconds }: StaleProducerData): void {
  const header = new Int32Array(ring, 0, 3);
  const got = new Int32Array(control);
  const producer = new ByteRing(ring);
  const deadline = Date.now() + seconds * 1000;
  const message = Buffer.from('late');
  let caught = 0;
  let tries = 0;
  while (caught < wanted && Date.now() < deadline) {
    tries++;
    while (Atomics.load(header, RING_HEADER.SLEEPING) !== 1 && Date.now() < deadline);
    Atomics.store(header, RING_HEADER.SLEEPING, 0);
    if (Atomics.notify(header, RING_HEADER.WRITE) !== 0) continue;
    caught++;
    const before = Atomics.load(got, 0);
    producer.write(message, 0, message.length);
    // The reader says when it has the message; a reader that sleeps through it never does.
    Atomics.wait(got, 0, before, 3_000);
  }
  const report: StaleProducerReport = { caught, received: Atomics.load(got, 0), attempts: tries };
  parentPort?.postMessage(report);
}
