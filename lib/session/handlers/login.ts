import { ProtocolError } from '../../errors.js';
import { OP_COUNT } from '../../shards/messages.js';
import type { Session } from './session.js';

/** LOGIN <user>: reply with how many messages wait, counted by the user's shard. */
export function handleLogin(session: Session, user: Buffer): void {
  const { identity } = session;
  // SECURITY: with client certificates a connection is the user its certificate names
  // and no one else. Any other name breaks the protocol: dropped, nothing sent.
  if (identity !== null && !identity.equals(user)) {
    const name = user.toString('latin1');
    const certified = identity.toString('latin1');
    session.logger.warn(
      { code: 'PH_ERR_PROTOCOL_IDENTITY_MISMATCH', remote: session.remote, user: name, certificate: certified },
      `LOGIN ${name} refused: the client certificate is for ${certified}; connection dropped`,
    );
    throw new ProtocolError('PH_ERR_PROTOCOL_IDENTITY_MISMATCH', `LOGIN ${name} on a connection whose certificate is for ${certified}`);
  }
  session.router.count(user, session.replies.reserve(OP_COUNT, user.length));
}
