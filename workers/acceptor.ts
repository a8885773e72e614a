// A further acceptor thread's entry (acceptors > 1): it runs the session code over its
// own channels to the shards and has no logic of its own.
import { parentPort, workerData } from 'node:worker_threads';
import type { AcceptorTaskData } from '../lib/acceptors/messages.js';
import { runAcceptor } from '../lib/acceptors/thread.js';

if (parentPort === null) throw new Error('workers/acceptor runs as a worker thread');
void runAcceptor(workerData as AcceptorTaskData, parentPort);
