import { ProtocolError } from '../errors.js';
import { isValidUsername } from './username.js';

export type Command =
  | { readonly kind: 'login'; readonly user: Buffer }
  | { readonly kind: 'compose'; readonly to: Buffer; readonly body: Buffer }
  | { readonly kind: 'read' }
  | { readonly kind: 'exit' };

/**
 * Where a session stands, as the protocol sees it:
 *   'login'   nothing accepted yet: only LOGIN or EXIT may come
 *   'ready'   logged in: COMPOSE, READ or EXIT
 *   'body'    after `COMPOSE <user>`: the next line is the message, whatever it says
 *   'ended'   EXIT or a protocol error: nothing more is parsed
 */
export type SessionState = 'login' | 'ready' | 'body' | 'ended';

const LOGIN_ = Buffer.from('LOGIN ');
const COMPOSE_ = Buffer.from('COMPOSE ');
const READ = Buffer.from('READ');
const EXIT = Buffer.from('EXIT');

const READ_COMMAND: Command = Object.freeze({ kind: 'read' });
const EXIT_COMMAND: Command = Object.freeze({ kind: 'exit' });

function startsWith(line: Buffer, prefix: Buffer): boolean {
  if (line.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (line[i] !== prefix[i]) return false;
  return true;
}

function equals(line: Buffer, word: Buffer): boolean {
  return line.length === word.length && startsWith(line, word);
}

/**
 * Turns lines into commands for one connection. Pure: no I/O, no storage; it only knows
 * the grammar and the session state. A line that breaks the protocol throws a
 * `ProtocolError` and ends the session, after which nothing more is accepted.
 */
export class CommandParser {
  #state: SessionState = 'login';
  #user: Buffer | null = null;
  #to: Buffer | null = null;

  get state(): SessionState {
    return this.#state;
  }

  /** The logged-in username (its own copy, not a view into a read buffer). */
  get user(): Buffer | null {
    return this.#user;
  }

  /** A command, or null when the line was a COMPOSE header waiting for its message. */
  feed(line: Buffer): Command | null {
    switch (this.#state) {
      case 'body': {
        // PROTOCOL: the line after COMPOSE is the message, whatever it says, even empty.
        const to = this.#to as Buffer;
        this.#to = null;
        this.#state = 'ready';
        return { kind: 'compose', to, body: line };
      }
      case 'ready':
        return this.#ready(line);
      case 'login':
        return this.#login(line);
      case 'ended':
        throw new ProtocolError('PH_ERR_PROTOCOL_UNKNOWN_COMMAND', 'the session has ended');
    }
  }

  #login(line: Buffer): Command {
    if (startsWith(line, LOGIN_)) {
      // A copy: the session keeps the name long after the read buffer is gone.
      const user = Buffer.from(this.#name(line, LOGIN_.length));
      this.#user = user;
      this.#state = 'ready';
      return { kind: 'login', user };
    }
    if (equals(line, EXIT)) return this.#exit();
    // PROTOCOL: COMPOSE or READ before LOGIN drops the connection.
    if (startsWith(line, COMPOSE_) || equals(line, READ)) {
      return this.#fail('PH_ERR_PROTOCOL_NOT_LOGGED_IN', 'LOGIN must come first');
    }
    return this.#fail('PH_ERR_PROTOCOL_UNKNOWN_COMMAND', 'not a command');
  }

  #ready(line: Buffer): Command | null {
    if (equals(line, READ)) return READ_COMMAND;
    if (startsWith(line, COMPOSE_)) {
      this.#to = this.#name(line, COMPOSE_.length);
      this.#state = 'body';
      return null;
    }
    if (equals(line, EXIT)) return this.#exit();
    // PROTOCOL: a second LOGIN drops the connection.
    if (startsWith(line, LOGIN_)) return this.#fail('PH_ERR_PROTOCOL_ALREADY_LOGGED_IN', 'already logged in');
    return this.#fail('PH_ERR_PROTOCOL_UNKNOWN_COMMAND', 'not a command');
  }

  #name(line: Buffer, from: number): Buffer {
    // PROTOCOL: exactly one space, then the name to the end of the line; a space inside
    // the name (`LOGIN a b`, `LOGIN  bob`) is a bad byte, so the connection drops.
    if (!isValidUsername(line, from, line.length)) {
      return this.#fail('PH_ERR_PROTOCOL_BAD_USERNAME', 'bad username');
    }
    return line.subarray(from);
  }

  #exit(): Command {
    this.#state = 'ended';
    return EXIT_COMMAND;
  }

  #fail(code: ConstructorParameters<typeof ProtocolError>[0], message: string): never {
    this.#state = 'ended';
    throw new ProtocolError(code, message);
  }
}
