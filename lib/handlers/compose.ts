import type { ComposeCommand } from '../protocol/commands.js';
import { OP_COMPOSE } from '../shard-messages.js';
import { loggedInUser, type Session } from './session.js';

/** COMPOSE <to> + message: stored by the recipient's shard; the sender is the logged-in user. */
export function handleCompose(session: Session, command: ComposeCommand): void {
  const { to, source, start, end } = command;
  session.router.compose(to, loggedInUser(session), source, start, end, session.replies.reserve(OP_COMPOSE));
}
