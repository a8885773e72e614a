import { OP_COUNT } from '../../shards/messages.js';
import type { Session } from './session.js';

/** LOGIN <user>: reply with how many messages wait, counted by the user's shard. */
export function handleLogin(session: Session, user: Buffer): void {
  session.router.count(user, session.replies.reserve(OP_COUNT, user.length));
}
