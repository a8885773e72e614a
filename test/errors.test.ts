import { readFileSync } from 'node:fs';
import test from 'ava';
import * as errors from '../lib/errors.js';
import {
  ClientClosedError,
  ClientError,
  ERROR_CODES,
  type ErrorCode,
  InvalidOptionError,
  PigeonholeError,
  ProtocolError,
  ServerStateError,
  ShardError,
  StoreError,
  deserializeError,
  errorMessage,
  isErrorCode,
  serializeError,
} from '../lib/errors.js';

const docs = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
const codes = Object.keys(ERROR_CODES) as ErrorCode[];

// As fastify's test/internals/errors.test.js: a code nobody documented is a code nobody can handle.
test('every code in ERROR_CODES is documented in docs/errors.md', (t) => {
  const missing = codes.filter((code) => !docs.includes(`\`${code}\``));
  t.deepEqual(missing, []);
});

test('docs/errors.md lists no code that does not exist', (t) => {
  const documented = [...docs.matchAll(/`(PH_ERR_[A-Z0-9_]+)`/g)].map((match) => match[1] as string);
  t.true(documented.length > 0);
  t.deepEqual(
    documented.filter((code) => !isErrorCode(code)),
    [],
  );
});

test('each documented code names a class that exists and is a PigeonholeError', (t) => {
  const rows = [...docs.matchAll(/^\|\s*`(PH_ERR_[A-Z0-9_]+)`\s*\|\s*`(\w+)`\s*\|/gm)];
  t.is(rows.length, codes.length, 'one table row per code');
  for (const [, code, className] of rows) {
    const ctor = (errors as Record<string, unknown>)[className as string];
    t.true(typeof ctor === 'function' && (ctor === PigeonholeError || ctor.prototype instanceof PigeonholeError), `${code}: ${className}`);
  }
});

test('codes follow PH_ERR_<AREA>_<WHAT> and each has a default message', (t) => {
  for (const code of codes) {
    t.regex(code, /^PH_ERR_[A-Z]+_[A-Z0-9_]+$/);
    t.true(ERROR_CODES[code].length > 0, code);
  }
});

test('isErrorCode knows exactly the codes of the table', (t) => {
  for (const code of codes) t.true(isErrorCode(code), code);
  for (const code of ['PH_ERR_NOPE', 'ECONNRESET', '', 'toString', 'hasOwnProperty', '__proto__']) t.false(isErrorCode(code), code);
});

/** Every class, built with a cause where its constructor takes one. */
const BUILT: [className: string, build: (cause: unknown) => PigeonholeError, code: ErrorCode, takesCause: boolean][] = [
  ['PigeonholeError', (cause) => new PigeonholeError('PH_ERR_SERVER_CLOSED', 'msg', { cause }), 'PH_ERR_SERVER_CLOSED', true],
  ['ProtocolError', (cause) => new ProtocolError('PH_ERR_PROTOCOL_LINE_TOO_LONG', 'msg', { cause }), 'PH_ERR_PROTOCOL_LINE_TOO_LONG', true],
  ['ShardError', (cause) => new ShardError('PH_ERR_SHARD_CRASHED', 'msg', { cause }), 'PH_ERR_SHARD_CRASHED', true],
  ['ServerStateError', (cause) => new ServerStateError('PH_ERR_SERVER_LISTENING', 'msg', { cause }), 'PH_ERR_SERVER_LISTENING', true],
  ['StoreError', (cause) => new StoreError('PH_ERR_STORE_WRITE_FAILED', 'msg', { cause }), 'PH_ERR_STORE_WRITE_FAILED', true],
  ['ClientError', (cause) => new ClientError('PH_ERR_CLIENT_TIMEOUT', 'msg', { cause }), 'PH_ERR_CLIENT_TIMEOUT', true],
  ['ClientClosedError', (cause) => new ClientClosedError('msg', { cause }), 'PH_ERR_CLIENT_CLOSED', true],
  // Option errors are raised from plain values, never wrapping another error.
  ['InvalidOptionError', () => new InvalidOptionError('msg'), 'PH_ERR_OPTION_INVALID', false],
];

for (const [className, build, code, takesCause] of BUILT) {
  test(`${className} sets name, code${takesCause ? ' and cause' : ''}`, (t) => {
    const cause = new Error('underlying');
    const err = build(cause);
    t.is(err.name, className);
    t.is(err.constructor.name, className);
    t.is(err.code, code);
    t.is(err.message, 'msg');
    t.true(err instanceof PigeonholeError);
    t.true(err instanceof Error);
    if (takesCause) t.is(err.cause, cause);
    t.true(err.stack?.startsWith(`${className}: msg`), err.stack);
    t.is(String(err), `${className}: msg`);
  });
}

test('without a message, the code table gives the default', (t) => {
  t.is(new ProtocolError('PH_ERR_PROTOCOL_NOT_LOGGED_IN').message, ERROR_CODES.PH_ERR_PROTOCOL_NOT_LOGGED_IN);
  t.is(new ClientClosedError().message, ERROR_CODES.PH_ERR_CLIENT_CLOSED);
  t.is(new ServerStateError('PH_ERR_SERVER_CLOSED').message, ERROR_CODES.PH_ERR_SERVER_CLOSED);
});

test('a cause is absent unless given', (t) => {
  t.false('cause' in new ShardError('PH_ERR_SHARD_CRASHED'));
  t.false('cause' in new ClientClosedError());
});

test('InvalidOptionError takes either option code', (t) => {
  t.is(new InvalidOptionError('x').code, 'PH_ERR_OPTION_INVALID');
  t.is(new InvalidOptionError('x', 'PH_ERR_OPTION_UNKNOWN').code, 'PH_ERR_OPTION_UNKNOWN');
});

test('ClientClosedError is a ClientError', (t) => {
  t.true(new ClientClosedError() instanceof ClientError);
});

test('serializeError and deserializeError rebuild the typed error across structured clone', (t) => {
  for (const [className, build] of BUILT) {
    const original = build(new Error('underlying'));
    const wire = structuredClone(serializeError(original));
    t.deepEqual(wire, { code: original.code, message: original.message });
    const rebuilt = deserializeError(wire);
    t.true(rebuilt instanceof PigeonholeError, className);
    t.is((rebuilt as PigeonholeError).code, original.code);
    t.is(rebuilt.message, original.message);
    // The code decides the class: its area's. (ClientClosedError comes back a ClientError,
    // and the base class built with a server code a ServerStateError.)
    const expected = { ClientClosedError: 'ClientError', PigeonholeError: 'ServerStateError' }[className] ?? className;
    t.is(rebuilt.constructor.name, expected);
  }
  t.true(deserializeError({ code: 'PH_ERR_STORE_OPEN_FAILED', message: 'm' }) instanceof StoreError);
  t.true(deserializeError({ code: 'PH_ERR_OPTION_UNKNOWN', message: 'm' }) instanceof InvalidOptionError);
});

test('deserializeError keeps a code that is not ours on a plain Error', (t) => {
  const rebuilt = deserializeError({ code: 'SQLITE_CORRUPT', message: 'database disk image is malformed' });
  t.false(rebuilt instanceof PigeonholeError);
  t.is((rebuilt as NodeJS.ErrnoException).code, 'SQLITE_CORRUPT');
  t.is(rebuilt.message, 'database disk image is malformed');
});

test('each class takes only the codes of its own area', (t) => {
  const wrong: [string, () => unknown][] = [
    ['ProtocolError', () => new ProtocolError('PH_ERR_STORE_WRITE_FAILED' as never)],
    ['StoreError', () => new StoreError('PH_ERR_SHARD_CRASHED' as never)],
    ['ShardError', () => new ShardError('PH_ERR_CLIENT_CLOSED' as never)],
    ['ClientError', () => new ClientError('PH_ERR_SERVER_CLOSED' as never)],
    ['ServerStateError', () => new ServerStateError('PH_ERR_PROTOCOL_LINE_TOO_LONG' as never)],
    ['InvalidOptionError', () => new InvalidOptionError('x', 'PH_ERR_STORE_OPEN_FAILED' as never)],
  ];
  for (const [className, build] of wrong) {
    const err = t.throws(build, { instanceOf: TypeError }, className);
    t.regex(err?.message ?? '', new RegExp(`^${className} takes PH_ERR_[A-Z]+_\\* codes`));
  }
  // The base class, for code outside any area, takes any code.
  t.is(new PigeonholeError('PH_ERR_STORE_OPEN_FAILED').code, 'PH_ERR_STORE_OPEN_FAILED');
});

test('errorMessage gives an Error its message and anything else its string', (t) => {
  t.is(errorMessage(new Error('disk full')), 'disk full');
  t.is(errorMessage('plain'), 'plain');
  t.is(errorMessage(undefined), 'undefined');
});

test('serializeError keeps a Node error code, and marks anything else ERR_UNKNOWN', (t) => {
  const errno = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
  t.deepEqual(serializeError(errno), { code: 'ECONNREFUSED', message: 'connect ECONNREFUSED' });
  t.deepEqual(serializeError(new TypeError('bad')), { code: 'ERR_UNKNOWN', message: 'bad' });
  t.deepEqual(serializeError(Object.assign(new Error('n'), { code: 42 })), { code: 'ERR_UNKNOWN', message: 'n' });
  t.deepEqual(serializeError('a string'), { code: 'ERR_UNKNOWN', message: 'a string' });
  t.deepEqual(serializeError(undefined), { code: 'ERR_UNKNOWN', message: 'undefined' });
});
