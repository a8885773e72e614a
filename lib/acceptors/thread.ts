import { type MessagePort, threadId } from 'node:worker_threads';
import { type ShardError, deserializeError, errorMessage, serializeError } from '../errors.js';
import type { LogFields, Logger } from '../logger.js';
import { SharedConnections } from '../session/shared-connections.js';
import type { BatchSamples } from '../shards/counters.js';
import { LinkedShards } from '../shards/linked-shards.js';
import { ShardRouter } from '../shards/router.js';
import type { Pem } from '../tls/files.js';
import type { ResolvedServerTls } from '../tls/server-tls.js';
import { osThreadId } from '../util/os-thread-id.js';
import { SessionAcceptor } from './acceptor.js';
import { AcceptBalance } from './balance.js';
import type { AcceptorLogLevel, AcceptorTaskData, FromAcceptor, ToAcceptor } from './messages.js';
import { listenShared } from './shared-port.js';
import { totalsOf } from './totals.js';

/**
 * A further acceptor thread's life: the same session code as the listening thread (a
 * SessionAcceptor over a router of its own), with channels to the shards the server
 * started, accepting on the server's port beside the other threads. The supervisor
 * (AcceptorPool) talks to it over `port`; an exception nobody catches ends the thread,
 * which the supervisor reports and replaces.
 */
export async function runAcceptor(data: AcceptorTaskData, port: MessagePort): Promise<void> {
  const post = (message: FromAcceptor): void => port.postMessage(message);
  const logger = portLogger(post, data.debug);
  let acceptor: SessionAcceptor;
  let backend: LinkedShards;
  try {
    const connections = new SharedConnections(data.connections, data.acceptors);
    backend = new LinkedShards(data.links, data.batchesInFlight);
    const router = new ShardRouter(backend, { replay: data.replay, sharedStore: data.sharedStore, logger });
    await router.start(data.config);
    acceptor = new SessionAcceptor(router, {
      limits: data.limits,
      guard: {
        ...data.guard,
        logger,
        tally: connections.tally(data.acceptor, data.guard.maxConnections, data.guard.maxConnectionsPerIp),
        rate: connections.rate(data.guard.maxConnectionRatePerIp),
        counts: connections.limitCounts(data.acceptor),
      },
      tls: data.tls === null ? null : asBuffers(data.tls),
      logger,
    });
    // Full sample buffers go to the supervisor's registry, so none is lost between scrapes.
    router.counters.batches.drain = (samples) => postSamples(post, samples);
    const server = acceptor.listener();
    if (data.balance) AcceptBalance.keep(server, connections, data.acceptor);
    await listenShared(server, data.listen);
    // Once listening, an error is a failed accept (EMFILE, say): logged, and the thread goes on.
    server.on('error', (err) => acceptor.guard.acceptFailed(err));
    port.on('message', (message: ToAcceptor) => {
      void obey(message, { post, acceptor, backend, server, port });
    });
    post({ op: 'ready', threadId, tid: osThreadId() });
  } catch (err) {
    post({ op: 'failed', error: serializeError(err) });
    port.close();
  }
}

interface Thread {
  readonly post: (message: FromAcceptor) => void;
  readonly acceptor: SessionAcceptor;
  readonly backend: LinkedShards;
  readonly server: { close(): unknown };
  readonly port: MessagePort;
}

async function obey(message: ToAcceptor, thread: Thread): Promise<void> {
  const { post, acceptor, backend } = thread;
  switch (message.op) {
    case 'replaced':
      backend.replaced(message.shardId, message.end, deserializeError(message.error) as ShardError);
      return;
    case 'close': {
      thread.server.close();
      await acceptor.drain(message.graceMs);
      await acceptor.router.close();
      acceptor.guard.close();
      postSamples(post, acceptor.router.counters.batches);
      post({ op: 'closed' });
      return;
    }
    case 'ask': {
      const { id } = message;
      try {
        if (message.what === 'totals') {
          // The samples first: the supervisor has them when it reads the totals.
          postSamples(post, acceptor.router.counters.batches);
          post({ op: 'answer', id, totals: totalsOf(acceptor) });
        } else if (message.what === 'remotes') {
          post({ op: 'answer', id, remotes: acceptor.remotes() });
        } else {
          await acceptor.reloadTls(asBuffers(message.tls));
          post({ op: 'answer', id });
        }
      } catch (err) {
        post({ op: 'answer', id, error: serializeError(err) });
      }
    }
  }
}

/** Sends the batch samples kept so far to the supervisor and empties the buffer. */
function postSamples(post: (message: FromAcceptor) => void, samples: BatchSamples): void {
  const n = samples.length;
  if (n === 0) return;
  post({ op: 'samples', shard: samples.shard.slice(0, n), size: samples.size.slice(0, n), seconds: samples.seconds.slice(0, n) });
  samples.length = 0;
}

/** The host's logger is a function and cannot cross threads: lines travel on the port. */
function portLogger(post: (message: FromAcceptor) => void, debug: boolean): Logger {
  const line = (level: AcceptorLogLevel) => (fields: LogFields, message: string) => post({ op: 'log', level, fields: plain(fields), message });
  const logger: Logger = { info: line('info'), warn: line('warn'), error: line('error') };
  if (debug) logger.debug = line('debug');
  return logger;
}

/** Fields as data a port can carry (an Error field, say, becomes its message). */
function plain(fields: LogFields): LogFields {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) out[key] = value instanceof Error ? errorMessage(value) : value;
  return out;
}

/** PEM that crossed a port arrives as Uint8Array: node:tls wants strings or Buffers. */
function asBuffers(tls: ResolvedServerTls): ResolvedServerTls {
  const pem = (value: Pem | Pem[]): Pem | Pem[] => (Array.isArray(value) ? value.map(one) : one(value));
  const one = (value: Pem): Pem => (typeof value === 'string' || Buffer.isBuffer(value) ? value : Buffer.from(value as Uint8Array));
  const source = <S extends ResolvedServerTls['cert']>(src: S): S => ('pem' in src ? ({ pem: pem(src.pem) } as S) : src);
  return { cert: source(tls.cert), key: source(tls.key), ca: tls.ca === null ? null : source(tls.ca), passphrase: tls.passphrase };
}
