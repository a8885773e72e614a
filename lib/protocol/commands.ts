import { ProtocolError } from '../errors.js';
import { copyBytes } from '../util/copy-bytes.js';
import { MAX_USERNAME_BYTES, isValidUsername } from './username.js';

/**
 * COMPOSE with its message. The recipient is `toSource[toStart, toEnd)` and the message
 * `source[start, end)`: ranges, not copies or views, so a command costs no allocation.
 * `to` and `body` give them as Buffers. Valid until the parser's next feed().
 */
export interface ComposeCommand {
  readonly kind: 'compose';
  readonly toSource: Buffer;
  readonly toStart: number;
  readonly toEnd: number;
  readonly source: Buffer;
  readonly start: number;
  readonly end: number;
  readonly to: Buffer;
  readonly body: Buffer;
}

export type Command =
  | { readonly kind: 'login'; readonly user: Buffer }
  | ComposeCommand
  | { readonly kind: 'read' }
  | { readonly kind: 'exit' };

// One per parser, refilled for each COMPOSE: a message costs no object of its own.
class MutableCompose implements ComposeCommand {
  readonly kind = 'compose';
  // The recipient's name is copied here from its line: the message line that completes
  // the command may arrive in another read, after the first one's buffer was reused.
  readonly toSource = Buffer.allocUnsafe(MAX_USERNAME_BYTES);
  readonly toStart = 0;
  toEnd = 0;
  source: Buffer = this.toSource;
  start = 0;
  end = 0;

  get to(): Buffer {
    return this.toSource.subarray(0, this.toEnd);
  }

  get body(): Buffer {
    return this.source.subarray(this.start, this.end);
  }
}

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

function startsWith(line: Buffer, start: number, end: number, prefix: Buffer): boolean {
  if (end - start < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (line[start + i] !== prefix[i]) return false;
  return true;
}

function equals(line: Buffer, start: number, end: number, word: Buffer): boolean {
  return end - start === word.length && startsWith(line, start, end, word);
}

/**
 * Turns lines into commands for one connection. Pure: no I/O, no storage; it only knows
 * the grammar and the session state. A line that breaks the protocol throws a
 * `ProtocolError` and ends the session, after which nothing more is accepted.
 */
export class CommandParser {
  #state: SessionState = 'login';
  #user: Buffer | null = null;
  readonly #compose = new MutableCompose();

  get state(): SessionState {
    return this.#state;
  }

  /** The logged-in username (its own copy, not a view into a read buffer). */
  get user(): Buffer | null {
    return this.#user;
  }

  /**
   * Lets go of the last COMPOSE's message line (the command is done with once handled):
   * a connection that waits should not keep the buffer it was read into.
   */
  forgetMessage(): void {
    this.#compose.source = this.#compose.toSource;
  }

  /**
   * The command of the line `line[start, end)`, or null when the line was a COMPOSE
   * header waiting for its message.
   */
  feed(line: Buffer, start = 0, end = line.length): Command | null {
    switch (this.#state) {
      case 'body': {
        // PROTOCOL: the line after COMPOSE is the message, whatever it says, even empty.
        const compose = this.#compose;
        compose.source = line;
        compose.start = start;
        compose.end = end;
        this.#state = 'ready';
        return compose;
      }
      case 'ready':
        return this.#ready(line, start, end);
      case 'login':
        return this.#login(line, start, end);
      case 'ended':
        throw new ProtocolError('PH_ERR_PROTOCOL_UNKNOWN_COMMAND', 'the session has ended');
    }
  }

  #login(line: Buffer, start: number, end: number): Command {
    if (startsWith(line, start, end, LOGIN_)) {
      // A copy: the session keeps the name long after the read buffer is gone.
      const from = start + LOGIN_.length;
      this.#checkName(line, from, end);
      const user = Buffer.from(line.subarray(from, end));
      this.#user = user;
      this.#state = 'ready';
      return { kind: 'login', user };
    }
    if (equals(line, start, end, EXIT)) return this.#exit();
    // PROTOCOL: COMPOSE or READ before LOGIN drops the connection.
    if (startsWith(line, start, end, COMPOSE_) || equals(line, start, end, READ)) {
      return this.#fail('PH_ERR_PROTOCOL_NOT_LOGGED_IN', 'LOGIN must come first');
    }
    return this.#fail('PH_ERR_PROTOCOL_UNKNOWN_COMMAND', 'not a command');
  }

  #ready(line: Buffer, start: number, end: number): Command | null {
    if (equals(line, start, end, READ)) return READ_COMMAND;
    if (startsWith(line, start, end, COMPOSE_)) {
      const from = start + COMPOSE_.length;
      this.#checkName(line, from, end);
      const compose = this.#compose;
      compose.toEnd = copyBytes(line, from, end, compose.toSource, 0);
      this.#state = 'body';
      return null;
    }
    if (equals(line, start, end, EXIT)) return this.#exit();
    // PROTOCOL: a second LOGIN drops the connection.
    if (startsWith(line, start, end, LOGIN_)) return this.#fail('PH_ERR_PROTOCOL_ALREADY_LOGGED_IN', 'already logged in');
    return this.#fail('PH_ERR_PROTOCOL_UNKNOWN_COMMAND', 'not a command');
  }

  #checkName(line: Buffer, from: number, end: number): void {
    // PROTOCOL: exactly one space, then the name to the end of the line; a space inside
    // the name (`LOGIN a b`, `LOGIN  bob`) is a bad byte, so the connection drops.
    if (!isValidUsername(line, from, end)) this.#fail('PH_ERR_PROTOCOL_BAD_USERNAME', 'bad username');
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
