// A pigeonhole server for a test: on a free port of 127.0.0.1, silent, closed when the test ends.
import { once } from 'node:events';
import { type AddressInfo, type Socket, createServer as createNetServer } from 'node:net';
import type { ExecutionContext, SerialFn, TestFn } from 'ava';
import { silentLogger } from '../../lib/logger.js';
import type { ServerOptions } from '../../lib/options.js';
import { type PigeonholeServer, createServer } from '../../lib/server.js';
import { shardIndex } from '../../lib/util/shard-hash.js';
import { HOST, LineClient } from './line-client.js';

export { HOST } from './line-client.js';

/** A running server on 127.0.0.1 and a way to open raw connections to it. */
export interface TestServer {
  readonly server: PigeonholeServer;
  readonly port: number;
  /** A new raw connection, destroyed when the test ends if still open. */
  connect(): Promise<LineClient>;
  /** A new connection that has logged in as `user` and read the count reply. */
  login(user: string): Promise<LineClient>;
}

type Teardown = (fn: () => unknown) => void;

// Applied to every server's options last: a file that runs another file's tests on other
// threads (several acceptors) or over another store (Redis) sets it.
let adjustOptions: (options: ServerOptions) => ServerOptions = (options) => options;

/** Makes every server this process starts take `adjust(options)`, after the test's own options. */
export function adjustServerOptions(adjust: (options: ServerOptions) => ServerOptions): void {
  adjustOptions = adjust;
}

async function start(options: ServerOptions, teardown: Teardown): Promise<TestServer> {
  // Inline unless asked: no threads to start, so the quickest server there is.
  const server = createServer(adjustOptions({ shards: 0, logger: silentLogger, ...options }));
  const clients = new Set<LineClient>();
  // Registered before the clients' teardown is possible, so clients go first (ava runs
  // teardowns last-in first-out) and close() does not wait out a silent client.
  teardown(async () => {
    for (const client of clients) client.destroy();
    await server.close();
  });
  const address = await server.listen({ port: 0, host: HOST });
  const connectClient = async (): Promise<LineClient> => {
    const client = await LineClient.connect(address.port);
    clients.add(client);
    return client;
  };
  return {
    server,
    port: address.port,
    connect: connectClient,
    login: async (user) => {
      const client = await connectClient();
      await client.send(`LOGIN ${user}\n`);
      await client.readLine();
      return client;
    },
  };
}

/** Creates a server with `createServer({ shards: 0, logger: silentLogger, ...options })` on a free port, closed when the test ends. */
export function startServer(t: ExecutionContext, options: ServerOptions = {}): Promise<TestServer> {
  return start(options, (fn) => t.teardown(fn));
}

/**
 * One server per shard count shared by a whole file (for tests that need no special
 * options and use names of their own): started lazily, closed in `test.after.always`.
 */
export function sharedServers(test: TestFn): (shards: number) => Promise<TestServer> {
  const servers = new Map<number, Promise<TestServer>>();
  const teardowns: (() => unknown)[] = [];
  test.after.always(async () => {
    for (const fn of teardowns.reverse()) await fn();
  });
  return (shards) => {
    let server = servers.get(shards);
    if (server === undefined) {
      server = start({ shards }, (fn) => teardowns.push(fn));
      servers.set(shards, server);
    }
    return server;
  };
}

/** A fresh unique name (see uniqueName) whose mailbox lives on shard `shard` of `shards`. */
export function nameOnShard(prefix: string, shard: number, shards = 2): string {
  for (let i = 0; i < 1000; i++) {
    const name = uniqueName(prefix);
    if (shardIndex(Buffer.from(name), shards) === shard) return name;
  }
  throw new Error(`no name for shard ${shard} of ${shards} in 1000 tries`);
}

/**
 * The shard counts every behaviour must hold for: inline, and two worker threads. A file
 * that runs another file's tests where inline shards cannot be (several acceptors) narrows
 * it with onlyShardCounts() before importing that file.
 */
export const SHARD_COUNTS: number[] = [0, 2];

export function onlyShardCounts(counts: readonly number[]): void {
  SHARD_COUNTS.splice(0, SHARD_COUNTS.length, ...counts);
}

/** Declares `title (shards=N)` once for each of SHARD_COUNTS (pass `test.serial` for serial tests). */
export function forEachShards(
  test: TestFn | SerialFn,
  title: string,
  body: (t: ExecutionContext, shards: number) => Promise<void> | void,
): void {
  for (const shards of SHARD_COUNTS) test(`${title} (shards=${shards})`, (t) => body(t, shards));
}

/** A name unique to this process and call, so tests sharing a server never share a mailbox. */
let nameCounter = 0;
export function uniqueName(prefix: string): string {
  nameCounter += 1;
  return `${prefix}-${process.pid}-${nameCounter}`;
}

/** A net server of the test's own that hands each socket to `server.handle()`. */
export async function handOver(t: ExecutionContext, server: PigeonholeServer): Promise<{ port: number; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const net = createNetServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    sockets.push(socket);
    server.handle(socket);
  });
  t.teardown(() => new Promise<void>((resolve) => net.close(() => resolve())));
  net.listen(0, HOST);
  await once(net, 'listening');
  return { port: (net.address() as AddressInfo).port, sockets };
}
