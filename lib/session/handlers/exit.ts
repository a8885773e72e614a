import type { Session } from './session.js';

/** EXIT: no reply; the connection closes once the replies before it are written. */
export function handleExit(session: Session): void {
  session.replies.end();
}
