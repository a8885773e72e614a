import type { Command } from '../../protocol/commands.js';
import { handleCompose } from './compose.js';
import { handleExit } from './exit.js';
import { handleLogin } from './login.js';
import { handleRead } from './read.js';
import type { Session } from './session.js';

export type { Session } from './session.js';

export function dispatch(session: Session, command: Command): void {
  const { counters } = session;
  switch (command.kind) {
    case 'login':
      counters.login++;
      return handleLogin(session, command.user);
    case 'compose':
      counters.compose++;
      return handleCompose(session, command);
    case 'read':
      counters.read++;
      return handleRead(session);
    case 'exit':
      counters.exit++;
      return handleExit(session);
  }
}
