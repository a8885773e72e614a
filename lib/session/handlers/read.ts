import { OP_READ } from '../../shards/messages.js';
import { loggedInUser, type Session } from './session.js';

/** READ: the oldest message of the logged-in user, removed by its shard, or READ ERROR. */
export function handleRead(session: Session): void {
  session.router.read(loggedInUser(session), session.replies.reserve(OP_READ, session.maxReadReplyBytes));
}
