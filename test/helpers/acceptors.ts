// Where a server with several acceptor threads serves each connection: asked of the
// threads themselves (kAcceptorRemotes), matched by the client's own address and port.
import { existsSync } from 'node:fs';
import { type PigeonholeServer, kAcceptorRemotes } from '../../lib/server.js';
import type { LineClient } from './line-client.js';
import { until } from './line-client.js';

/** The peer address the server sees for a client's socket. */
export function peerOf(client: LineClient): string {
  return `${client.socket.localAddress}:${client.socket.localPort}`;
}

/**
 * The acceptor serving each client, by index into `clients`. Waits (bounded) until every
 * client is served somewhere: a connection the kernel completed may not be accepted yet.
 */
export function acceptorsOf(server: PigeonholeServer, clients: readonly LineClient[]): Promise<number[]> {
  return acceptorsOfPeers(server, clients.map(peerOf));
}

/** The acceptor serving each of `peers` (the clients' host:port, as the server sees them). */
export async function acceptorsOfPeers(server: PigeonholeServer, peers: readonly string[]): Promise<number[]> {
  let placed: (number | undefined)[] = [];
  await until(async () => {
    const where = new Map<string, number>();
    for (const { acceptor, remotes } of await server[kAcceptorRemotes]()) for (const remote of remotes) where.set(remote, acceptor);
    placed = peers.map((peer) => where.get(peer));
    return placed.every((acceptor) => acceptor !== undefined);
  }, 'every connection is served by an acceptor thread');
  return placed as number[];
}

/**
 * Opens connections until each of the server's `acceptors` threads serves at least
 * `each` of them (or `maxTries` connections were opened); returns them by acceptor, all
 * of them opened included.
 */
export async function clientsOnEvery(server: PigeonholeServer, connect: () => Promise<LineClient>, each: number, maxTries = 60): Promise<LineClient[][]> {
  const acceptors = server.options.acceptors;
  const clients: LineClient[] = [];
  let byAcceptor: LineClient[][] = Array.from({ length: acceptors }, () => []);
  while (clients.length < maxTries) {
    // Several at a time. The thread that opens them here is the listening thread, which
    // steps back (AcceptBalance) only once it holds more than its share, and while it
    // does, opens nothing: the other threads get a chance at connections waiting then,
    // and one at a time there are none, so on a loaded machine the listening thread could
    // win every race (it once took 60 of 60).
    const batch = Math.min(acceptors * each, maxTries - clients.length);
    clients.push(...(await Promise.all(Array.from({ length: batch }, () => connect()))));
    const where = await acceptorsOf(server, clients);
    byAcceptor = Array.from({ length: acceptors }, (_, acceptor) => clients.filter((_, i) => where[i] === acceptor));
    if (byAcceptor.every((list) => list.length >= each)) return byAcceptor;
  }
  throw new Error(`after ${clients.length} connections the acceptors serve ${byAcceptor.map((list) => list.length).join('/')}, not ${each} each`);
}

/** One connection on each of a two-acceptor server's threads: [on the listening thread, on the other]. */
export async function oneOnEach(server: PigeonholeServer, connect: () => Promise<LineClient>): Promise<[LineClient, LineClient]> {
  const [first, second] = await clientsOnEvery(server, connect, 1);
  return [first?.[0] as LineClient, second?.[0] as LineClient];
}

/** Whether `tid` names a live thread of this process (Linux). */
export function isThreadOfThisProcess(tid: number): boolean {
  return existsSync(`/proc/${process.pid}/task/${tid}`);
}
