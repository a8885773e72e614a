import { ErrorReply, MaxCommandRedirectionsError, type RedisArgument } from '@redis/client';
import type { RedisNode } from './node.js';

/** What following a cluster's redirects needs of it. */
export interface SlotMap {
  /** The connection to the node the map says serves `key`. */
  ownerOf(key: RedisArgument): Promise<RedisNode>;
  /** The connection to the node at HOST:PORT, if the map knows it. */
  nodeAt(address: string): Promise<RedisNode | undefined>;
  /** Has the map learn the cluster's slots again (after a MOVED, or an unknown node). */
  relearn(key: RedisArgument): Promise<void>;
}

/** A command's reply, and the connection of the node that ran it. */
export interface RoutedReply {
  readonly reply: unknown;
  readonly node: RedisNode;
}

// node-redis's own default: past this many MOVED or ASK, the command counts as refused.
export const MAX_REDIRECTS = 16;

/** Finding the node to send to failed: the command was sent nowhere. */
export class NotSentError extends Error {
  constructor(cause: unknown) {
    super(`no node to send to: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'NotSentError';
  }
}

async function lookUp<T>(find: () => Promise<T>): Promise<T> {
  try {
    return await find();
  } catch (err) {
    throw new NotSentError(err);
  }
}

type Redirect = { readonly kind: 'MOVED' | 'ASK'; readonly address: string };

/**
 * Sends a command to the node that serves `key`, following MOVED and ASK itself, and
 * says which node ran it: WAIT must go to that node's connection, the one that carried
 * the write, and node-redis's own redirect handling does not say where a command ended.
 *
 * A redirect is a refusal (the node did not run the command), so sending it on is never
 * a second run. ASKING goes in the same write as the command, chained to it, so that a
 * connection lost between the two fails both rather than sending the command alone later.
 */
export async function sendFollowingRedirects(map: SlotMap, key: RedisArgument, args: readonly RedisArgument[], options: { readonly timeout: number }): Promise<RoutedReply> {
  let node = await lookUp(() => map.ownerOf(key));
  let asking = false;
  for (let redirects = 0; ; redirects++) {
    let redirect: Redirect | null;
    try {
      const reply = asking ? await sendAsking(node, args, options) : await node.sendCommand(args, options);
      return { reply, node };
    } catch (err) {
      redirect = redirectOf(err);
      if (redirect === null) throw err;
      if (redirects >= MAX_REDIRECTS) throw new MaxCommandRedirectionsError(err);
    }
    const { address } = redirect;
    if (redirect.kind === 'MOVED') {
      await map.relearn(key);
      node = await lookUp(() => map.ownerOf(key));
      asking = false;
      continue;
    }
    let target = await lookUp(() => map.nodeAt(address));
    if (target === undefined) {
      await map.relearn(key);
      target = await lookUp(() => map.nodeAt(address));
    }
    if (target === undefined) throw new ErrorReply(`ASK to ${redirect.address}, a node the cluster's slots do not name`);
    node = target;
    asking = true;
  }
}

async function sendAsking(node: RedisNode, args: readonly RedisArgument[], options: { readonly timeout: number }): Promise<unknown> {
  const chainId = Symbol('ASKING');
  // The command's own reply says what happened to it: had ASKING failed, the command
  // would have been answered ASK again, not run.
  const asked = node.sendCommand(['ASKING'], { timeout: options.timeout, chainId }).catch(() => {});
  const reply = await node.sendCommand(args, { ...options, chainId });
  await asked;
  return reply;
}

/** `MOVED <slot> <host:port>` or `ASK <slot> <host:port>`, else null. */
export function redirectOf(err: unknown): Redirect | null {
  if (!(err instanceof ErrorReply)) return null;
  const match = /^(MOVED|ASK) \d+ (\S+)$/.exec(err.message);
  return match === null ? null : { kind: match[1] as Redirect['kind'], address: match[2] as string };
}
