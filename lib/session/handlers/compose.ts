import type { ComposeCommand } from '../../protocol/commands.js';
import { OP_COMPOSE } from '../../shards/messages.js';
import { loggedInUser, type Session } from './session.js';

/** COMPOSE <to> + message: stored by the recipient's shard; the sender is the logged-in user. */
export function handleCompose(session: Session, command: ComposeCommand): void {
  // Its cost in flight: the message and names wait in the shard's next batch until it leaves.
  const from = loggedInUser(session);
  const reply = session.replies.reserve(OP_COMPOSE, command.end - command.start + command.toEnd - command.toStart + from.length);
  session.router.compose(command, from, reply);
}
