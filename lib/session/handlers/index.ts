import type { Command } from '../../protocol/commands.js';
import { handleCompose } from './compose.js';
import { handleExit } from './exit.js';
import { handleLogin } from './login.js';
import { handleRead } from './read.js';
import type { Session } from './session.js';

export type { Session } from './session.js';

export function dispatch(session: Session, command: Command): void {
  switch (command.kind) {
    case 'login':
      return handleLogin(session, command.user);
    case 'compose':
      return handleCompose(session, command);
    case 'read':
      return handleRead(session);
    case 'exit':
      return handleExit(session);
  }
}
