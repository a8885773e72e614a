import { type Interface, createInterface } from 'node:readline';
import { ClientError } from '../errors.js';
import { usernameProblem } from '../protocol/username.js';
import { type Client, connect } from './client.js';

export interface InteractiveOptions {
  host: string;
  port: number;
  /** Log in as this user; when absent the user is asked. */
  user?: string;
  timeoutMs?: number;
  maxLineBytes?: number;
  input: NodeJS.ReadableStream & { isTTY?: boolean };
  output: NodeJS.WritableStream & { isTTY?: boolean };
  errorOutput: NodeJS.WritableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
}

export const INTERACTIVE_HELP = `Commands:
  compose <user>   send a message to <user>; the next line is the message
  read             show the oldest message waiting for you (it is removed from the server)
  exit             leave (Ctrl-D does the same)
  help             show this list
`;

const COMMAND_WORDS = ['compose ', 'read', 'exit', 'help'];

export interface Style {
  name(text: string): string;
  good(text: string): string;
  bad(text: string): string;
  dim(text: string): string;
}

// https://no-color.org: NO_COLOR set to any non-empty value turns colour off.
export function colourWanted(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv): boolean {
  return stream.isTTY === true && (env.NO_COLOR === undefined || env.NO_COLOR === '');
}

/** Plain ANSI rather than util.styleText: on Node 20 styleText colours whatever the stream. */
export function createStyle(colour: boolean): Style {
  const sgr = (open: number, close: number) => (text: string) => (colour ? `\x1b[${open}m${text}\x1b[${close}m` : text);
  return { name: sgr(36, 39), good: sgr(32, 39), bad: sgr(31, 39), dim: sgr(2, 22) };
}

/**
 * A message's text for a terminal: control characters would let a sender move the
 * cursor, recolour or retitle the reader's terminal, so they are shown escaped there.
 * Elsewhere (a pipe, a file) the text goes out as it is.
 */
export function printable(text: string, terminal: boolean): string {
  if (!terminal) return text;
  return text.replace(/[\x00-\x08\x0a-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export function countLine(user: string, count: number, style: Style): string {
  const waiting = count === 0 ? 'no messages' : count === 1 ? '1 message' : `${count} messages`;
  return `logged in as ${style.name(user)}: ${waiting} waiting`;
}

function completer(line: string): [string[], string] {
  if (line.includes(' ')) return [[], line];
  const hits = COMMAND_WORDS.filter((word) => word.startsWith(line));
  return [hits.length > 0 ? hits : COMMAND_WORDS, line];
}

// The session ends with this exit code.
class Done {
  constructor(readonly code: number) {}
}

/**
 * The interactive client. On a terminal it prompts, completes commands with Tab and
 * colours its output (unless NO_COLOR); with piped input it prints no prompts, so
 * `printf 'read\nexit\n' | pigeonhole client --user bob` can be scripted, and the first
 * refused line (bad username, command or argument) ends it with exit code 2.
 *
 * Exit codes: 0 after exit or end of input, 1 when the server is unreachable or drops
 * the connection (one line on stderr), 2 for refused piped input.
 */
export async function runInteractive(options: InteractiveOptions): Promise<number> {
  const { input, output, errorOutput, env } = options;
  const terminal = input.isTTY === true && output.isTTY === true;
  const style = createStyle(colourWanted(output, env));
  const errStyle = createStyle(colourWanted(errorOutput, env));
  const say = (text: string): void => void output.write(`${text}\n`);
  const complain = (text: string): void => void errorOutput.write(`${errStyle.bad('pigeonhole:')} ${text}\n`);

  // Piped input: refuse the line and stop. A terminal: explain and carry on.
  const refuse = (text: string): void => {
    complain(text);
    if (!terminal) throw new Done(2);
  };

  let user = options.user;
  if (user !== undefined) {
    const problem = usernameProblem(user);
    if (problem !== null) {
      complain(`bad --user: ${problem}`);
      if (!terminal) return 2;
      user = undefined;
    }
  }

  let client: Client;
  try {
    client = await connect({ host: options.host, port: options.port, timeoutMs: options.timeoutMs, maxLineBytes: options.maxLineBytes });
  } catch (err) {
    if (err instanceof ClientError) {
      complain(err.message);
      return 1;
    }
    throw err;
  }

  const rl: Interface = createInterface({
    input,
    // Without an output readline echoes and prompts nothing: right for piped input.
    output: terminal ? output : undefined,
    terminal,
    completer: terminal ? completer : undefined,
  });
  rl.on('SIGINT', () => rl.close()); // Ctrl-C leaves like Ctrl-D
  const lines = rl[Symbol.asyncIterator]();
  const lost = client.closed.then((reason) => ({ lost: reason }));

  // The next input line, or null at end of input. Throws Done(1) if the server goes away
  // while the user is typing.
  const ask = async (prompt: string): Promise<string | null> => {
    if (terminal) {
      rl.setPrompt(style.dim(prompt));
      rl.prompt();
    }
    const next = await Promise.race([lines.next(), lost]);
    if ('lost' in next) {
      if (terminal) output.write('\n');
      complain(next.lost?.message ?? 'the connection closed');
      throw new Done(1);
    }
    return next.done === true ? null : next.value;
  };

  try {
    while (user === undefined) {
      const line = await ask('username: ');
      if (line === null) {
        if (terminal) return 0;
        complain('input ended before a username was given');
        return 2;
      }
      const problem = usernameProblem(line);
      if (problem === null) user = line;
      else refuse(terminal ? `${problem}; try another` : problem);
    }
    say(countLine(user, await client.login(user), style));
    if (terminal) say(style.dim('type help for the commands'));

    for (;;) {
      const line = await ask(`${user}> `);
      if (line === null) break;
      const words = line.trim().split(/\s+/).filter((word) => word.length > 0);
      const [word, ...args] = words;
      if (word === undefined) continue;
      switch (word) {
        case 'help':
          output.write(INTERACTIVE_HELP);
          break;
        case 'read': {
          if (args.length > 0) {
            refuse('read takes no argument');
            break;
          }
          const result = await client.read();
          if (result === null) say(style.dim('no messages'));
          else say(`${style.name(result.from)}: ${printable(result.message, terminal)}`);
          break;
        }
        case 'compose': {
          const [to] = args;
          if (to === undefined || args.length > 1) {
            refuse('usage: compose <user>, then the message on the next line');
            break;
          }
          const problem = usernameProblem(to);
          if (problem !== null) {
            refuse(`cannot send to ${JSON.stringify(to)}: ${problem}`);
            break;
          }
          const message = await ask('message> ');
          if (message === null) {
            refuse('input ended before the message; nothing was sent');
            break;
          }
          let sent: boolean;
          try {
            sent = await client.compose(to, message);
          } catch (err) {
            if (err instanceof ClientError && err.code === 'PH_ERR_CLIENT_INVALID_MESSAGE') {
              refuse(`${err.message}; nothing was sent`);
              break;
            }
            throw err;
          }
          say(sent ? style.good(`sent to ${to}`) : style.bad(`not sent: the mailbox of ${to} is full, or the server could not store it`));
          break;
        }
        case 'exit':
          if (args.length > 0) {
            refuse('exit takes no argument');
            break;
          }
          await client.exit();
          return 0;
        default:
          refuse(`unknown command ${JSON.stringify(word)}; type help for the commands`);
      }
    }
    // End of input (Ctrl-D): leave politely, and leave the shell prompt on a line of its own.
    if (terminal) output.write('\n');
    await client.exit();
    return 0;
  } catch (err) {
    if (err instanceof Done) {
      if (err.code === 2) await client.exit().catch(() => {});
      return err.code;
    }
    if (err instanceof ClientError) {
      complain(err.message);
      return 1;
    }
    throw err;
  } finally {
    rl.close();
    client.close();
  }
}
