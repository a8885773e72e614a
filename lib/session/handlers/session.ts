import type { Logger } from '../../logger.js';
import type { ReplyQueue } from '../reply-queue.js';
import type { ShardRouter } from '../../shards/router.js';
import type { SessionCounters } from '../counters.js';

/** What a command handler may touch: the router, this connection's replies, its user. */
export interface Session {
  readonly router: ShardRouter;
  readonly replies: ReplyQueue;
  /** The logged-in username; set from LOGIN on. */
  readonly user: Buffer | null;
  /** The largest reply a READ can bring (a whole message and its sender): its cost in flight. */
  readonly maxReadReplyBytes: number;
  /**
   * With client certificates, the name the connection's certificate gives (its subject
   * CN): the only user it may LOGIN as. Null when the server takes no client certificates.
   */
  readonly identity: Buffer | null;
  readonly counters: SessionCounters;
  readonly logger: Logger;
  /** The client's address, host:port, for log lines. */
  readonly remote: string;
}

export function loggedInUser(session: Session): Buffer {
  // The parser refuses every command but LOGIN and EXIT before LOGIN, so this holds.
  if (session.user === null) throw new Error('command before LOGIN reached a handler');
  return session.user;
}
