// A generator thread: runs its share of the connections and reports what it saw.
import { createHistogram } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { userName } from './body.js';
import { commandsFor, parserFor } from './dialect.js';
import { type LoadContext, LoadConnection } from './load-connection.js';
import type { FromWorker, RunCounts, ToWorker, WorkerInit, WindowCounts } from './types.js';
import { Verifier } from './verify.js';

const init = workerData as WorkerInit;
const port = parentPort;
if (port === null) throw new Error('bench/load/worker.ts runs as a worker thread');

function post(message: FromWorker, transfer: ArrayBuffer[] = []): void {
  (port as NonNullable<typeof port>).postMessage(message, transfer);
}

const { shape } = init;
const commands = commandsFor(shape.dialect);
const recipients = shape.connections + shape.users;
const composeHeads: Buffer[] = [];
for (let r = 0; r < recipients; r++) composeHeads.push(commands.composeHead(userName(shape.prefix, shape.connections, r)));

const verifier = new Verifier(shape.connections, shape.messageBytes, shape.prefix);
const window: WindowCounts = { composes: 0, failed: 0, reads: 0, readHits: 0 };
const run: RunCounts = { composeReplies: 0, sent: 0, failed: 0, reads: 0, readHits: 0, abandoned: 0 };
const histogram = createHistogram();
const usedRecipients = new Uint8Array(recipients);
const connections: LoadConnection[] = [];
let remaining = init.count;
let stopping = false;

const ctx: LoadContext = {
  shape,
  parser: parserFor(shape.dialect),
  codec: verifier.codec,
  verifier,
  histogram,
  phase: new Int32Array(init.phase),
  window,
  run,
  composeHeads,
  composeTail: commands.composeTail,
  usedRecipients,
  readBuffer: Buffer.allocUnsafe(64 * 1024),
  onDone: () => {
    remaining--;
    if (stopping && remaining === 0) report();
  },
};

let reported = false;
function report(): void {
  if (reported) return;
  reported = true;
  const outcomes = connections.map((connection) => connection.outcomes);
  const reads = verifier.ledger.counts;
  const transfer = new Set<ArrayBuffer>();
  for (const array of [...outcomes, ...reads, usedRecipients]) if (array !== null) transfer.add(array.buffer as ArrayBuffer);
  post(
    {
      op: 'result',
      result: { histogram, window, run, errors: { counts: verifier.errors.counts, samples: verifier.errors.samples }, outcomes, reads, usedRecipients },
    },
    [...transfer],
  );
}

async function setup(): Promise<void> {
  const opened: Promise<void>[] = [];
  for (let i = 0; i < init.count; i++) {
    const index = init.first + i;
    const connection = new LoadConnection(ctx, index, commands.read(userName(shape.prefix, shape.connections, index)));
    connections.push(connection);
    opened.push(connection.open(commands.login(userName(shape.prefix, shape.connections, index))));
  }
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`connections not ready after ${init.setupTimeoutMs} ms`)), init.setupTimeoutMs);
  });
  try {
    await Promise.race([Promise.all(opened), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

port.on('message', (message: ToWorker) => {
  if (message.op === 'go') {
    for (const connection of connections) connection.start();
  } else if (message.op === 'stop') {
    stopping = true;
    for (const connection of connections) connection.checkDone();
    if (remaining === 0) return report();
    // Replies still owed after the grace period are missing.
    setTimeout(() => {
      for (const connection of connections) connection.abort();
      report();
    }, init.stopGraceMs).unref();
  }
});

setup().then(
  () => post({ op: 'ready' }),
  (err: unknown) => {
    for (const connection of connections) connection.abort();
    post({ op: 'failed', message: err instanceof Error ? err.message : String(err) });
  },
);
