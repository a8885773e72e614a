import test from 'ava';
import { type ErrorCode, ProtocolError } from '../../lib/errors.js';
import { type Command, CommandParser } from '../../lib/protocol/commands.js';

const b = (text: string): Buffer => Buffer.from(text, 'latin1');

function loggedIn(name = 'alice'): CommandParser {
  const parser = new CommandParser();
  parser.feed(b(`LOGIN ${name}`));
  return parser;
}

function refuses(t: import('ava').ExecutionContext, parser: CommandParser, line: string | Buffer, code: ErrorCode): void {
  const bytes = typeof line === 'string' ? b(line) : line;
  t.throws(() => parser.feed(bytes), { instanceOf: ProtocolError, code }, `line ${JSON.stringify(bytes.toString('latin1'))}`);
  // PROTOCOL: nothing from the bad line or after it is executed.
  t.is(parser.state, 'ended');
}

function name(command: Command | null): string | undefined {
  if (command === null) return undefined;
  if (command.kind === 'login') return command.user.toString('latin1');
  if (command.kind === 'compose') return command.to.toString('latin1');
  return undefined;
}

// ---- Accepted lines ------------------------------------------------------------------

test('LOGIN <name> logs in and gives the name', (t) => {
  const parser = new CommandParser();
  t.is(parser.state, 'login');
  t.is(parser.user, null);
  const command = parser.feed(b('LOGIN alice'));
  t.is(command?.kind, 'login');
  t.is(name(command), 'alice');
  t.is(parser.state, 'ready');
  t.is(parser.user?.toString(), 'alice');
});

test('COMPOSE <name> waits for the next line, which is the message', (t) => {
  const parser = loggedIn();
  t.is(parser.feed(b('COMPOSE bob')), null);
  t.is(parser.state, 'body');
  const command = parser.feed(b('Hi Bob!'));
  t.is(command?.kind, 'compose');
  t.is(name(command), 'bob');
  if (command?.kind === 'compose') t.is(command.body.toString(), 'Hi Bob!');
  t.is(parser.state, 'ready');
});

test('READ after LOGIN', (t) => {
  const parser = loggedIn();
  t.deepEqual(parser.feed(b('READ')), { kind: 'read' });
  t.is(parser.state, 'ready');
});

test('a session of many commands', (t) => {
  const parser = new CommandParser();
  const kinds: (string | null)[] = [];
  for (const line of ['LOGIN alice', 'READ', 'COMPOSE bob', 'one', 'COMPOSE alice', 'two', 'READ', 'READ', 'EXIT']) {
    kinds.push(parser.feed(b(line))?.kind ?? null);
  }
  t.deepEqual(kinds, ['login', 'read', null, 'compose', null, 'compose', 'read', 'read', 'exit']);
});

for (const body of ['READ', 'EXIT', '', 'LOGIN x', 'COMPOSE carol', 'read', '  spaces  ', 'LOGIN  bob']) {
  test(`the line after COMPOSE is the message whatever it says: ${JSON.stringify(body)}`, (t) => {
    const parser = loggedIn();
    t.is(parser.feed(b('COMPOSE bob')), null);
    const command = parser.feed(b(body));
    t.is(command?.kind, 'compose');
    if (command?.kind === 'compose') t.is(command.body.toString('latin1'), body);
    // Still logged in, and the next line is a command again.
    t.is(parser.state, 'ready');
    t.deepEqual(parser.feed(b('READ')), { kind: 'read' });
  });
}

test('the message keeps every byte (NUL, CR, Latin-1, 0xFF, UTF-8)', (t) => {
  const parser = loggedIn();
  parser.feed(b('COMPOSE bob'));
  const body = Buffer.concat([Buffer.from([0x00, 0x0d, 0xe9, 0xff, 0x7f]), Buffer.from('✉ ok', 'utf8')]);
  const command = parser.feed(body);
  t.true(command?.kind === 'compose' && Buffer.compare(command.body, body) === 0);
});

test('a user may compose to themselves', (t) => {
  const parser = loggedIn('alice');
  parser.feed(b('COMPOSE alice'));
  t.is(name(parser.feed(b('note to self'))), 'alice');
});

test('EXIT is allowed before LOGIN', (t) => {
  const parser = new CommandParser();
  t.deepEqual(parser.feed(b('EXIT')), { kind: 'exit' });
  t.is(parser.state, 'ended');
});

test('EXIT is allowed after LOGIN', (t) => {
  const parser = loggedIn();
  t.deepEqual(parser.feed(b('EXIT')), { kind: 'exit' });
  t.is(parser.state, 'ended');
});

test('after EXIT every line is refused', (t) => {
  for (const line of ['LOGIN bob', 'READ', 'COMPOSE bob', 'EXIT', '']) {
    const before = new CommandParser();
    before.feed(b('EXIT'));
    refuses(t, before, line, 'PH_ERR_PROTOCOL_UNKNOWN_COMMAND');
    const after = loggedIn();
    after.feed(b('EXIT'));
    refuses(t, after, line, 'PH_ERR_PROTOCOL_UNKNOWN_COMMAND');
  }
});

test('after a protocol error every line is refused', (t) => {
  for (const line of ['LOGIN bob', 'READ', 'COMPOSE bob', 'EXIT', 'hello']) {
    const parser = new CommandParser();
    t.throws(() => parser.feed(b('read')), { instanceOf: ProtocolError });
    t.throws(() => parser.feed(b(line)), { instanceOf: ProtocolError });
    t.is(parser.state, 'ended');

    const ready = loggedIn();
    t.throws(() => ready.feed(b('LOGIN again')), { instanceOf: ProtocolError });
    t.throws(() => ready.feed(b(line)), { instanceOf: ProtocolError });
  }
});

test("LOGIN's user is a copy: changing the line afterwards changes nothing", (t) => {
  const line = b('LOGIN alice');
  const parser = new CommandParser();
  const command = parser.feed(line);
  line.fill(0x7a);
  t.is(name(command), 'alice');
  t.is(parser.user?.toString(), 'alice');
});

test("LOGIN's user does not share memory with the line, even inside a larger buffer", (t) => {
  const chunk = b('xxLOGIN bob\nREAD\n');
  const parser = new CommandParser();
  const command = parser.feed(chunk.subarray(2, 11));
  chunk.fill(0x00);
  t.is(name(command), 'bob');
  t.is(parser.user?.toString(), 'bob');
});

// ---- Names ---------------------------------------------------------------------------

test('a 256-byte name is accepted, 257 bytes refused', (t) => {
  const n256 = 'n'.repeat(256);
  t.is(name(new CommandParser().feed(b(`LOGIN ${n256}`))), n256);
  refuses(t, new CommandParser(), `LOGIN ${'n'.repeat(257)}`, 'PH_ERR_PROTOCOL_BAD_USERNAME');

  const composer = loggedIn();
  t.is(composer.feed(b(`COMPOSE ${n256}`)), null);
  t.is(name(composer.feed(b('hi'))), n256);
  refuses(t, loggedIn(), `COMPOSE ${'n'.repeat(257)}`, 'PH_ERR_PROTOCOL_BAD_USERNAME');
});

test('every visible ASCII byte 0x21-0x7E is allowed in a name, including both ends', (t) => {
  t.is(name(new CommandParser().feed(Buffer.from([...b('LOGIN '), 0x21]))), '!');
  t.is(name(new CommandParser().feed(Buffer.from([...b('LOGIN '), 0x7e]))), '~');
  const all = Buffer.from(Array.from({ length: 0x7e - 0x21 + 1 }, (_, i) => 0x21 + i));
  t.is(name(new CommandParser().feed(Buffer.concat([b('LOGIN '), all]))), all.toString('latin1'));
  const composer = loggedIn();
  composer.feed(Buffer.concat([b('COMPOSE '), all]));
  t.is(name(composer.feed(b('x'))), all.toString('latin1'));
});

const BAD_NAME_BYTES: [string, number][] = [
  ['space 0x20', 0x20],
  ['DEL 0x7F', 0x7f],
  ['0x80', 0x80],
  ['tab', 0x09],
  ['NUL', 0x00],
  ['CR', 0x0d],
  ['0xFF', 0xff],
  ['0xE9 (Latin-1 é)', 0xe9],
];

for (const [label, byte] of BAD_NAME_BYTES) {
  test(`a name with ${label} is refused, in LOGIN and in COMPOSE, anywhere in the name`, (t) => {
    for (const bytes of [[byte], [byte, 0x61], [0x61, byte], [0x61, byte, 0x62]]) {
      refuses(t, new CommandParser(), Buffer.concat([b('LOGIN '), Buffer.from(bytes)]), 'PH_ERR_PROTOCOL_BAD_USERNAME');
      refuses(t, loggedIn(), Buffer.concat([b('COMPOSE '), Buffer.from(bytes)]), 'PH_ERR_PROTOCOL_BAD_USERNAME');
    }
  });
}

test('a name made of multi-byte UTF-8 is refused', (t) => {
  refuses(t, new CommandParser(), Buffer.from('LOGIN zoë', 'utf8'), 'PH_ERR_PROTOCOL_BAD_USERNAME');
});

test('usernames are case sensitive: LOGIN Bob and LOGIN bob give different names', (t) => {
  t.is(name(new CommandParser().feed(b('LOGIN Bob'))), 'Bob');
  t.is(name(new CommandParser().feed(b('LOGIN bob'))), 'bob');
});

// ---- Protocol errors (docs/protocol.md "Protocol errors") ----------------------

const BEFORE_LOGIN: [line: string, code: ErrorCode][] = [
  ['read', 'PH_ERR_PROTOCOL_UNKNOWN_COMMAND'],
  ['READ ', 'PH_ERR_PROTOCOL_UNKNOWN_COMMAND'],
  ['LOGIN', 'PH_ERR_PROTOCOL_UNKNOWN_COMMAND'],
  ['LOGIN ', 'PH_ERR_PROTOCOL_BAD_USERNAME'],
  ['LOGIN a b', 'PH_ERR_PROTOCOL_BAD_USERNAME'],
  ['LOGIN  bob', 'PH_ERR_PROTOCOL_BAD_USERNAME'],
  ['LOGIN bob ', 'PH_ERR_PROTOCOL_BAD_USERNAME'],
  ['LOGIN\tbob', 'PH_ERR_PROTOCOL_UNKNOWN_COMMAND'],
  ['COMPOSE bob', 'PH_ERR_PROTOCOL_NOT_LOGGED_IN'],
  ['READ', 'PH_ERR_PROTOCOL_NOT_LOGGED_IN'],
  ['', 'PH_ERR_PROTOCOL_UNKNOWN_COMMAND'],
  [' ', 'PH_ERR_PROTOCOL_UNKNOWN_COMMAND'],
  ['login bob', 'PH_ERR_PROTOCOL_UNKNOWN_COMMAND'],
  ['Login bob', 'PH_ERR_PROTOCOL_UNKNOWN_COMMAND'],
  ['LOGINbob', 'PH_ERR_PROTOCOL_UNKNOWN_COMMAND'],
  [' LOGIN bob', 'PH_ERR_PROTOCOL_UNKNOWN_COMMAND'],
  ['exit', 'PH_ERR_PROTOCOL_UNKNOWN_COMMAND'],
  ['Exit', 'PH_ERR_PROTOCOL_UNKNOWN_COMMAND'],
  ['EXIT ', 'PH_ERR_PROTOCOL_UNKNOWN_COMMAND'],
  ['EXITS', 'PH_ERR_PROTOCOL_UNKNOWN_COMMAND'],
  ['HELLO', 'PH_ERR_PROTOCOL_UNKNOWN_COMMAND'],
  // A CR left over after the framer dropped one (`LOGIN bob\r\r\n`) is a bad name byte.
  ['LOGIN bob\r', 'PH_ERR_PROTOCOL_BAD_USERNAME'],
];

for (const [line, code] of BEFORE_LOGIN) {
  test(`before LOGIN, ${JSON.stringify(line)} drops with ${code}`, (t) => {
    refuses(t, new CommandParser(), line, code);
  });
}

const AFTER_LOGIN: [line: string, code: ErrorCode][] = [
  ['read', 'PH_ERR_PROTOCOL_UNKNOWN_COMMAND'],
  ['Read', 'PH_ERR_PROTOCOL_UNKNOWN_COMMAND'],
  ['READ ', 'PH_ERR_PROTOCOL_UNKNOWN_COMMAND'],
  [' READ', 'PH_ERR_PROTOCOL_UNKNOWN_COMMAND'],
  ['READ bob', 'PH_ERR_PROTOCOL_UNKNOWN_COMMAND'],
  ['READ\r', 'PH_ERR_PROTOCOL_UNKNOWN_COMMAND'],
  ['LOGIN alice', 'PH_ERR_PROTOCOL_ALREADY_LOGGED_IN'],
  ['LOGIN bob', 'PH_ERR_PROTOCOL_ALREADY_LOGGED_IN'],
  ['COMPOSE', 'PH_ERR_PROTOCOL_UNKNOWN_COMMAND'],
  ['COMPOSE ', 'PH_ERR_PROTOCOL_BAD_USERNAME'],
  ['COMPOSE a b', 'PH_ERR_PROTOCOL_BAD_USERNAME'],
  ['COMPOSE  bob', 'PH_ERR_PROTOCOL_BAD_USERNAME'],
  ['compose bob', 'PH_ERR_PROTOCOL_UNKNOWN_COMMAND'],
  ['Compose bob', 'PH_ERR_PROTOCOL_UNKNOWN_COMMAND'],
  ['COMPOSEbob', 'PH_ERR_PROTOCOL_UNKNOWN_COMMAND'],
  ['', 'PH_ERR_PROTOCOL_UNKNOWN_COMMAND'],
  ['exit', 'PH_ERR_PROTOCOL_UNKNOWN_COMMAND'],
  ['EXIT ', 'PH_ERR_PROTOCOL_UNKNOWN_COMMAND'],
  ['Hi Bob!', 'PH_ERR_PROTOCOL_UNKNOWN_COMMAND'],
];

for (const [line, code] of AFTER_LOGIN) {
  test(`after LOGIN, ${JSON.stringify(line)} drops with ${code}`, (t) => {
    refuses(t, loggedIn(), line, code);
  });
}

test('a refused COMPOSE header does not make the next line a message', (t) => {
  const parser = loggedIn();
  t.throws(() => parser.feed(b('COMPOSE a b')), { code: 'PH_ERR_PROTOCOL_BAD_USERNAME' });
  t.throws(() => parser.feed(b('hello')), { instanceOf: ProtocolError });
});

test('a refused LOGIN does not log in', (t) => {
  const parser = new CommandParser();
  t.throws(() => parser.feed(b('LOGIN a b')), { code: 'PH_ERR_PROTOCOL_BAD_USERNAME' });
  t.is(parser.user, null);
  t.throws(() => parser.feed(b('READ')), { instanceOf: ProtocolError });
});

test('replies for lines before the bad one are unaffected: the commands were returned', (t) => {
  const parser = new CommandParser();
  const done: string[] = [];
  const lines = ['LOGIN alice', 'COMPOSE bob', 'hi', 'READ', 'read', 'READ'];
  let failedAt = -1;
  for (const [i, line] of lines.entries()) {
    try {
      const command = parser.feed(b(line));
      if (command !== null) done.push(command.kind);
    } catch (err) {
      t.true(err instanceof ProtocolError);
      failedAt = i;
      break;
    }
  }
  t.deepEqual(done, ['login', 'compose', 'read']);
  t.is(failedAt, 4);
});
