import { OP_COMPOSE } from '../shard-messages.js';
import { loggedInUser, type Session } from './session.js';

/** COMPOSE <to> + message: stored by the recipient's shard; the sender is the logged-in user. */
export function handleCompose(session: Session, to: Buffer, body: Buffer): void {
  session.router.compose(to, loggedInUser(session), body, session.replies.reserve(OP_COMPOSE));
}
