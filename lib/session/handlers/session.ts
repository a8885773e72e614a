import type { ReplyQueue } from '../reply-queue.js';
import type { ShardRouter } from '../../shards/router.js';

/** What a command handler may touch: the router, this connection's replies, its user. */
export interface Session {
  readonly router: ShardRouter;
  readonly replies: ReplyQueue;
  /** The logged-in username; set from LOGIN on. */
  readonly user: Buffer | null;
  /** The largest reply a READ can bring (a whole message and its sender): its cost in flight. */
  readonly maxReadReplyBytes: number;
}

export function loggedInUser(session: Session): Buffer {
  // The parser refuses every command but LOGIN and EXIT before LOGIN, so this holds.
  if (session.user === null) throw new Error('command before LOGIN reached a handler');
  return session.user;
}
