import { type RedisArgument, createClient, createCluster } from '@redis/client';
import { StoreError, errorMessage } from '../../errors.js';
import type { Logger } from '../../logger.js';
import { LinkHealth } from './link-health.js';
import { BUFFERS, type RedisNode } from './node.js';
import { type RoutedReply, type SlotMap, sendFollowingRedirects } from './redirects.js';

/** Where the mailboxes are: one Redis (a URL) or a cluster (seed nodes, HOST:PORT). */
export type RedisTarget = { readonly url: string } | { readonly cluster: readonly string[] };

// Past this a command counts as lost (its outcome unknown): a Redis that hangs must not
// hang a shard's batch forever. Its reply, if it ever comes, is read and ignored.
export const COMMAND_TIMEOUT_MS = 10_000;
const COMMAND_OPTIONS = { typeMapping: BUFFERS, timeout: COMMAND_TIMEOUT_MS };

// While the link is down, reconnect after 50 ms, doubling up to 2 s, with some jitter so
// many shards and nodes do not knock at the same instant.
const FIRST_RECONNECT_MS = 50;
const MAX_RECONNECT_MS = 2_000;

/**
 * The connection to Redis or a Redis Cluster, through node-redis. It hides which of the
 * two it is: a command goes to the node that serves its key (following MOVED and ASK,
 * each of which says the command was not run there), and every command issued
 * in one event-loop turn leaves in one write per node (node-redis writes its queue once
 * per turn), so a shard's batch is one pipeline per node.
 *
 * Nothing is ever sent twice: commands issued while a node is unreachable fail at once
 * (no offline queue, so nothing is sent late), and a command in flight when its
 * connection breaks fails with it, never resent on the new connection. The link
 * reconnects on its own with backoff, logging through LinkHealth.
 */
export class RedisLink {
  /** For logs and errors: the URL without credentials, or the seed list. */
  readonly description: string;
  readonly #send: (key: RedisArgument, args: readonly RedisArgument[]) => Promise<RoutedReply>;
  readonly #masters: () => Promise<RedisNode[]>;
  readonly #close: () => Promise<void>;
  readonly #destroy: () => void;

  private constructor(
    description: string,
    parts: {
      send: RedisLink['send'];
      masters: RedisLink['masters'];
      close: () => Promise<void>;
      destroy: () => void;
    },
  ) {
    this.description = description;
    this.#send = parts.send;
    this.#masters = parts.masters;
    this.#close = parts.close;
    this.#destroy = parts.destroy;
  }

  /**
   * Connects; rejects with a StoreError (PH_ERR_STORE_OPEN_FAILED) if Redis cannot be
   * reached now. Once connected, a lost connection is retried for as long as the link
   * is open.
   */
  static async open(target: RedisTarget, logger: Logger): Promise<RedisLink> {
    const description = 'url' in target ? withoutCredentials(target.url) : `cluster ${target.cluster.join(',')}`;
    const health = new LinkHealth(logger);
    let started = false;
    let startFailure: unknown = null;
    const reconnectStrategy = (retries: number, cause: Error): number | Error => {
      // At start an unreachable Redis is the operator's to fix: fail instead of waiting.
      if (!started) return cause;
      return Math.min(MAX_RECONNECT_MS, FIRST_RECONNECT_MS * 2 ** Math.min(retries, 10)) + Math.floor(Math.random() * FIRST_RECONNECT_MS);
    };
    const onError = (address: string, err: Error): void => {
      if (started) health.failed(address, err);
      else startFailure ??= err;
    };
    let link: RedisLink;
    let connect: () => Promise<unknown>;
    if ('url' in target) {
      const client = createClient({ url: target.url, disableOfflineQueue: true, socket: { reconnectStrategy } });
      const address = description;
      client.on('error', (err: Error) => onError(address, err));
      client.on('ready', () => health.ready(address));
      const node = client as unknown as RedisNode;
      link = new RedisLink(description, {
        send: async (_key, args) => ({ reply: await node.sendCommand(args, COMMAND_OPTIONS), node }),
        masters: async () => [node],
        close: async () => void (await client.close()),
        destroy: () => client.destroy(),
      });
      connect = () => client.connect();
    } else {
      const cluster = createCluster({
        rootNodes: target.cluster.map((seed) => ({ socket: parseSeed(seed) })),
        defaults: { disableOfflineQueue: true, socket: { reconnectStrategy } },
      });
      type NodeInfo = { host?: string; port?: number };
      const addressOf = (info: NodeInfo | undefined): string => (info === undefined ? 'cluster' : `${info.host}:${info.port}`);
      cluster.on('error', (err: Error) => onError('cluster', err));
      cluster.on('node-error', (err: Error, info: NodeInfo) => onError(addressOf(info), err));
      cluster.on('node-ready', (info: NodeInfo) => health.ready(addressOf(info)));
      const slotMap: SlotMap = {
        ownerOf: async (key) => (await cluster.getNodeClientForKey(key)) as unknown as RedisNode,
        nodeAt: async (address) => {
          const node = cluster.nodeByAddress.get(address);
          return node === undefined ? undefined : ((await cluster.nodeClient(node)) as unknown as RedisNode);
        },
        // node-redis learns the slots again when one of its own commands is redirected: a
        // read of the key through it is that command (its answer does not matter).
        relearn: (key) => cluster.sendCommand(key, false, ['EXISTS', key], COMMAND_OPTIONS).then(() => {}, () => {}),
      };
      link = new RedisLink(description, {
        send: (key, args) => sendFollowingRedirects(slotMap, key, args, COMMAND_OPTIONS),
        masters: async () => (await Promise.all(cluster.masters.map((master) => cluster.nodeClient(master)))) as unknown as RedisNode[],
        close: async () => void (await cluster.close()),
        destroy: () => void cluster.destroy(),
      });
      connect = () => cluster.connect();
    }
    try {
      await connect();
    } catch (err) {
      link.#destroy();
      const reason = errorMessage(startFailure ?? err);
      throw new StoreError('PH_ERR_STORE_OPEN_FAILED', `cannot reach Redis at ${description}: ${reason}`, { cause: err });
    }
    started = true;
    return link;
  }

  /**
   * Sends a command to the node serving `key` (replies with Buffers for bulk strings),
   * and says which node's connection ran it: WAIT must follow a write on its own
   * connection. Every command takes this one path, so commands issued in order to one
   * node are written to it in that order (a batch's COMPOSE before its READ of the same
   * mailbox): a second path, however short, could overtake it.
   */
  send(key: RedisArgument, args: readonly RedisArgument[]): Promise<RoutedReply> {
    return this.#send(key, args);
  }

  /** A connection to every master, to load the function library on each. */
  masters(): Promise<RedisNode[]> {
    return this.#masters();
  }

  /** Closes after the replies already asked for have come. */
  close(): Promise<void> {
    return this.#close();
  }

  /** Closes at once, failing whatever is in flight. */
  destroy(): void {
    this.#destroy();
  }
}

/** HOST:PORT or [IPv6]:PORT, already checked by the options. */
export function parseSeed(seed: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(seed);
  if (match === null) throw new StoreError('PH_ERR_STORE_OPEN_FAILED', `not a Redis node address (HOST:PORT): ${seed}`);
  return { host: (match[1] ?? match[2]) as string, port: Number(match[3]) };
}

function withoutCredentials(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname === '/' ? '' : parsed.pathname}`;
  } catch {
    return 'the configured URL';
  }
}
