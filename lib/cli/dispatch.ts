import { check, CHECK_HELP } from './check.js';
import { client, CLIENT_HELP } from './client.js';
import { read, READ_HELP } from './read.js';
import { salvage, SALVAGE_HELP } from './salvage.js';
import { send, SEND_HELP } from './send.js';
import { serve, SERVE_HELP } from './serve.js';
import { PigeonholeError } from '../errors.js';
import { UsageError } from './flags.js';

const HELP = `Usage: pigeonhole <command> [options]

A TCP messaging server: users LOGIN, COMPOSE messages to each other and READ them.

Commands:
  serve      run a server (pigeonhole serve --help for its options)
  client     an interactive client: log in, then compose and read at a prompt
  send       send one message: pigeonhole send --from bob --to alice "Hi Alice!"
  read       read waiting messages: pigeonhole read --user alice [--all]
  check      check a data directory for damage: pigeonhole check --data-dir DIR
  salvage    copy every readable message of a damaged data directory into a fresh
             generation: pigeonhole salvage --data-dir DIR
  help       show this help, or a command's: pigeonhole help serve

Options:
  -h, --help     show this help
  -v, --version  show the version
`;

type CommandRunner = (args: string[]) => Promise<number>;

const COMMANDS: Record<string, { run: CommandRunner; help: string }> = {
  serve: { run: serve, help: SERVE_HELP },
  client: { run: client, help: CLIENT_HELP },
  send: { run: send, help: SEND_HELP },
  read: { run: read, help: READ_HELP },
  check: { run: check, help: CHECK_HELP },
  salvage: { run: salvage, help: SALVAGE_HELP },
};

async function version(): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  // dist/lib/cli/dispatch.js and lib/cli/dispatch.ts are both three levels below package.json.
  for (const path of ['../../../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(await readFile(new URL(path, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'pigeonhole' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // try the next location
    }
  }
  return 'unknown';
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    // Asked for nothing: the usage is the error message, so it goes to stderr.
    process.stderr.write(HELP);
    return 2;
  }
  if (name === '-h' || name === '--help') {
    process.stdout.write(HELP);
    return 0;
  }
  if (name === '-v' || name === '--version') {
    process.stdout.write(`${await version()}\n`);
    return 0;
  }
  if (name === 'help') {
    const topic = rest[0];
    if (topic === undefined) {
      process.stdout.write(HELP);
      return 0;
    }
    if (!Object.hasOwn(COMMANDS, topic)) throw new UsageError(`no help for '${topic}': not a command`);
    process.stdout.write((COMMANDS[topic] as { help: string }).help);
    return 0;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (command === undefined) throw new UsageError(`unknown command '${name}'`);
  return command.run(rest);
}

function isUsageProblem(err: unknown): err is Error {
  if (err instanceof UsageError) return true;
  // node:util parseArgs reports unknown flags and missing values with these codes.
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_');
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (isUsageProblem(err)) {
      // One line: parseArgs explains some mistakes over several (`--shards -1`).
      const reason = err.message.trim().replace(/\s*\n\s*/g, ' ');
      // The help that lists the flag that was wrong: the command's own, if one was named.
      const [name] = process.argv.slice(2);
      const help = name !== undefined && Object.hasOwn(COMMANDS, name) ? `pigeonhole ${name} --help` : 'pigeonhole --help';
      process.stderr.write(`pigeonhole: ${reason}\nRun '${help}' for usage.\n`);
      process.exitCode = 2;
      return;
    }
    if (err instanceof PigeonholeError) {
      // An expected failure (a data directory that can't be used, say): its message says it all.
      process.stderr.write(`pigeonhole: ${err.message}\n`);
      process.exitCode = 1;
      return;
    }
    const code = (err as { code?: unknown } | null)?.code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') {
      process.stderr.write(`pigeonhole: cannot listen: ${(err as Error).message}\n`);
      process.exitCode = 1;
      return;
    }
    process.stderr.write(`pigeonhole: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
