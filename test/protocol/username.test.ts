import test from 'ava';
import fc from 'fast-check';
import { MAX_USERNAME_BYTES, isValidUsername, usernameProblem } from '../../lib/protocol/username.js';

const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);

test('the longest name is 256 bytes', (t) => {
  t.is(MAX_USERNAME_BYTES, 256);
});

test('isValidUsername: 1 to 256 visible ASCII bytes', (t) => {
  t.true(isValidUsername(Buffer.from('bob')));
  t.true(isValidUsername(Buffer.from('a')));
  t.true(isValidUsername(Buffer.alloc(256, 0x61)));
  t.false(isValidUsername(Buffer.alloc(257, 0x61)));
  t.false(isValidUsername(Buffer.alloc(0)));
});

test('isValidUsername: 0x21 and 0x7E are the edges', (t) => {
  t.true(isValidUsername(bytes(0x21)));
  t.true(isValidUsername(bytes(0x7e)));
  for (const bad of [0x00, 0x09, 0x0a, 0x0d, 0x20, 0x7f, 0x80, 0xe9, 0xff]) {
    t.false(isValidUsername(bytes(bad)), `byte 0x${bad.toString(16)}`);
    t.false(isValidUsername(bytes(0x61, bad, 0x62)), `byte 0x${bad.toString(16)} inside`);
  }
});

test('isValidUsername: every byte value, alone', (t) => {
  for (let byte = 0; byte < 256; byte++) {
    t.is(isValidUsername(bytes(byte)), byte >= 0x21 && byte <= 0x7e, `byte 0x${byte.toString(16)}`);
  }
});

test('isValidUsername looks only at [start, end)', (t) => {
  const line = Buffer.from('LOGIN bob');
  t.true(isValidUsername(line, 6));
  t.true(isValidUsername(line, 6, line.length));
  t.false(isValidUsername(line, 5), 'the space before the name');
  t.false(isValidUsername(line, line.length), 'empty range');
  t.true(isValidUsername(Buffer.from('a b'), 0, 1));
  const long = Buffer.alloc(300, 0x61);
  t.true(isValidUsername(long, 44));
  t.false(isValidUsername(long, 43));
});

test('usernameProblem: null for good names, strings and bytes alike', (t) => {
  t.is(usernameProblem('bob'), null);
  t.is(usernameProblem('Bob!~'), null);
  t.is(usernameProblem(Buffer.from('alice')), null);
  t.is(usernameProblem('x'.repeat(256)), null);
});

test('usernameProblem: an empty name', (t) => {
  t.regex(usernameProblem('') ?? '', /empty/i);
  t.regex(usernameProblem(new Uint8Array(0)) ?? '', /empty/i);
});

test('usernameProblem: a name with a space says so', (t) => {
  for (const name of ['a b', ' bob', 'bob ', ' ']) t.regex(usernameProblem(name) ?? '', /space/i, JSON.stringify(name));
});

test('usernameProblem: a long name mentions the length limit', (t) => {
  const message = usernameProblem('x'.repeat(257)) ?? '';
  t.regex(message, /256/);
  t.regex(message, /257/);
  t.regex(message, /bytes/i);
});

test('usernameProblem counts bytes, not characters', (t) => {
  // 128 two-byte characters: 256 bytes, but not ASCII; 129 of them are 258 bytes.
  t.regex(usernameProblem('é'.repeat(129)) ?? '', /256/);
});

test('usernameProblem: control, DEL and non-ASCII bytes mention visible ASCII', (t) => {
  for (const name of ['a\tb', 'a\nb', 'a\rb', 'a\x00b', 'a\x7fb', 'zoë', '✉']) {
    t.regex(usernameProblem(name) ?? '', /visible ASCII/i, JSON.stringify(name));
  }
  t.regex(usernameProblem(bytes(0x61, 0xff)) ?? '', /visible ASCII/i);
  t.regex(usernameProblem(bytes(0x80)) ?? '', /visible ASCII/i);
});

test('property: usernameProblem is null exactly when isValidUsername is true', (t) => {
  const byte = fc.oneof(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0x21, max: 0x7e }));
  fc.assert(
    fc.property(
      fc.oneof(fc.array(byte, { maxLength: 8 }), fc.array(fc.integer({ min: 0x1f, max: 0x7f }), { minLength: 250, maxLength: 260 })),
      (values) => {
        const name = Uint8Array.from(values);
        return (usernameProblem(name) === null) === isValidUsername(name);
      },
    ),
    { numRuns: 500 },
  );
  t.pass();
});
