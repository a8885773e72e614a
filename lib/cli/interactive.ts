import { type Interface, createInterface } from 'node:readline';
import { type Client, type ConnectOptions, connect } from '../client/index.js';
import { ClientError } from '../errors.js';
import { usernameProblem } from '../protocol/username.js';
import { type Style, colourWanted, createStyle, printable } from './terminal.js';

export interface InteractiveOptions {
  host: string;
  port: number;
  tls?: ConnectOptions['tls'];
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

function completer(line: string): [string[], string] {
  if (line.includes(' ')) return [[], line];
  const hits = COMMAND_WORDS.filter((word) => word.startsWith(line));
  return [hits.length > 0 ? hits : COMMAND_WORDS, line];
}

export function countLine(user: string, count: number, style: Style): string {
  const waiting = count === 0 ? 'no messages' : count === 1 ? '1 message' : `${count} messages`;
  return `logged in as ${style.name(user)}: ${waiting} waiting`;
}

// The session ends with this exit code.
class Done {
  constructor(readonly code: number) {}
}

/** What a command of the interactive client works with. */
interface Prompt {
  readonly client: Client;
  readonly style: Style;
  readonly terminal: boolean;
  say(text: string): void;
  complain(text: string): void;
  /** Refuses a line: on a terminal it explains and carries on; piped input ends with exit code 2. */
  refuse(text: string): void;
  /** The next input line, or null at end of input; throws Done(1) if the server goes away meanwhile. */
  ask(prompt: string): Promise<string | null>;
  write(text: string): void;
}

/** One command of the prompt; resolves true when the session is over. */
type CommandHandler = (prompt: Prompt, args: string[]) => Promise<boolean>;

const COMMANDS: Record<string, CommandHandler> = {
  help: async (prompt) => {
    prompt.write(INTERACTIVE_HELP);
    return false;
  },
  read: async (prompt, args) => {
    if (args.length > 0) {
      prompt.refuse('read takes no argument');
      return false;
    }
    const result = await prompt.client.read();
    if (result === null) prompt.say(prompt.style.dim('no messages'));
    else prompt.say(`${prompt.style.name(result.from)}: ${printable(result.message, prompt.terminal)}`);
    return false;
  },
  compose: async (prompt, args) => {
    const [to] = args;
    if (to === undefined || args.length > 1) {
      prompt.refuse('usage: compose <user>, then the message on the next line');
      return false;
    }
    const problem = usernameProblem(to);
    if (problem !== null) {
      prompt.refuse(`cannot send to ${JSON.stringify(to)}: ${problem}`);
      return false;
    }
    const message = await prompt.ask('message> ');
    if (message === null) {
      prompt.refuse('input ended before the message; nothing was sent');
      return false;
    }
    let sent: boolean;
    try {
      sent = await prompt.client.compose(to, message);
    } catch (err) {
      if (err instanceof ClientError && err.code === 'PH_ERR_CLIENT_INVALID_MESSAGE') {
        prompt.refuse(`${err.message}; nothing was sent`);
        return false;
      }
      throw err;
    }
    const { style } = prompt;
    prompt.say(sent ? style.good(`sent to ${to}`) : style.bad(`not sent: the mailbox of ${to} is full, or the server could not store it`));
    return false;
  },
  exit: async (prompt, args) => {
    if (args.length > 0) {
      prompt.refuse('exit takes no argument');
      return false;
    }
    await prompt.client.exit();
    return true;
  },
};

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
  const errStyle = createStyle(colourWanted(errorOutput, env));
  const complain = (text: string): void => void errorOutput.write(`${errStyle.bad('pigeonhole:')} ${text}\n`);

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
    client = await connect({ host: options.host, port: options.port, tls: options.tls, timeoutMs: options.timeoutMs, maxLineBytes: options.maxLineBytes });
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
  const prompt = createPrompt(client, rl, options, terminal, complain);
  try {
    return await converse(prompt, user);
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

function createPrompt(client: Client, rl: Interface, options: InteractiveOptions, terminal: boolean, complain: (text: string) => void): Prompt {
  const { output, env } = options;
  const style = createStyle(colourWanted(output, env));
  const lines = rl[Symbol.asyncIterator]();
  // Once input has ended nothing more is asked: prompting a closed readline would resume
  // the terminal, and a process reading its terminal never exits.
  let ended = false;
  const lost = client.closed.then((reason) => ({ lost: reason }));
  return {
    client,
    style,
    terminal,
    say: (text) => void output.write(`${text}\n`),
    write: (text) => void output.write(text),
    complain,
    refuse: (text) => {
      complain(text);
      if (!terminal) throw new Done(2);
    },
    ask: async (text) => {
      if (ended) return null;
      if (terminal) {
        rl.setPrompt(style.dim(text));
        rl.prompt();
      }
      const next = await Promise.race([lines.next(), lost]);
      if ('lost' in next) {
        if (terminal) output.write('\n');
        complain(next.lost?.message ?? 'the connection closed');
        throw new Done(1);
      }
      if (next.done !== true) return next.value;
      ended = true;
      return null;
    },
  };
}

/** Logs in (asking for a name if need be), then runs commands until exit or end of input. */
async function converse(prompt: Prompt, given: string | undefined): Promise<number> {
  const { terminal } = prompt;
  let user = given;
  while (user === undefined) {
    const line = await prompt.ask('username: ');
    if (line === null) {
      if (terminal) return 0;
      prompt.complain('input ended before a username was given');
      return 2;
    }
    const problem = usernameProblem(line);
    if (problem === null) user = line;
    else prompt.refuse(terminal ? `${problem}; try another` : problem);
  }
  prompt.say(countLine(user, await prompt.client.login(user), prompt.style));
  if (terminal) prompt.say(prompt.style.dim('type help for the commands'));

  for (;;) {
    const line = await prompt.ask(`${user}> `);
    if (line === null) break;
    const [word, ...args] = line.trim().split(/\s+/).filter((part) => part.length > 0);
    if (word === undefined) continue;
    const command = Object.hasOwn(COMMANDS, word) ? COMMANDS[word] : undefined;
    if (command === undefined) {
      prompt.refuse(`unknown command ${JSON.stringify(word)}; type help for the commands`);
      continue;
    }
    if (await command(prompt, args)) return 0;
  }
  // End of input (Ctrl-D): leave politely, and leave the shell prompt on a line of its own.
  if (terminal) prompt.write('\n');
  await prompt.client.exit();
  return 0;
}
