import test from 'ava';
import fc from 'fast-check';
import { ProtocolError } from '../../lib/errors.js';
import { LineFramer } from '../../lib/protocol/framer.js';

const LF = 0x0a;
const CR = 0x0d;
const TOO_LONG = { instanceOf: ProtocolError, code: 'PH_ERR_PROTOCOL_LINE_TOO_LONG' } as const;

/** Every line the framer hands out until it needs more bytes; copies, so later pushes cannot change them. */
function drain(framer: LineFramer): Buffer[] {
  const lines: Buffer[] = [];
  for (let line = framer.next(); line !== null; line = framer.next()) lines.push(line);
  return lines;
}

function frame(max: number, ...chunks: (string | Buffer)[]): Buffer[] {
  const framer = new LineFramer(max);
  const lines: Buffer[] = [];
  for (const chunk of chunks) {
    framer.push(typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk);
    lines.push(...drain(framer));
  }
  return lines;
}

function strings(lines: Buffer[]): string[] {
  return lines.map((line) => line.toString('latin1'));
}

test('lines split on LF, the LF not part of the line', (t) => {
  t.deepEqual(strings(frame(100, 'LOGIN bob\nREAD\n')), ['LOGIN bob', 'READ']);
});

test('an empty line is a line', (t) => {
  t.deepEqual(strings(frame(100, '\n\nx\n')), ['', '', 'x']);
  t.deepEqual(strings(frame(100, '\r\n')), ['']);
});

test('one CR before LF is dropped', (t) => {
  t.deepEqual(strings(frame(100, 'LOGIN bob\r\nREAD\r\n')), ['LOGIN bob', 'READ']);
});

test('only one CR is dropped: "a\\r\\r\\n" keeps one CR', (t) => {
  t.deepEqual(strings(frame(100, 'a\r\r\n')), ['a\r']);
  // The same when the CRs arrive in separate chunks.
  t.deepEqual(strings(frame(100, 'a\r', '\r', '\n')), ['a\r']);
  t.deepEqual(strings(frame(100, 'a', '\r\r', '\n')), ['a\r']);
});

test('a CR not directly before LF stays in the line', (t) => {
  t.deepEqual(strings(frame(100, 'a\rb\n\rc\n')), ['a\rb', '\rc']);
});

test('a CR ending one chunk is dropped when the LF starts the next', (t) => {
  t.deepEqual(strings(frame(100, 'abc\r', '\ndef\n')), ['abc', 'def']);
});

test('bytes come back exactly: NUL, 0xFF, Latin-1, UTF-8', (t) => {
  const utf8 = Buffer.from('héllo wörld ✉ 🐦', 'utf8');
  const binary = Buffer.from([0x00, 0xff, 0xe9, 0x01, 0x7f, 0x80, 0x00]);
  const input = Buffer.concat([binary, Buffer.from([LF]), utf8, Buffer.from([CR, LF]), Buffer.from([0x00, LF])]);
  const lines = frame(100, input);
  t.is(lines.length, 3);
  t.true((lines[0] as Buffer).equals(binary));
  t.true((lines[1] as Buffer).equals(utf8));
  t.true((lines[2] as Buffer).equals(Buffer.from([0x00])));
});

test('a UTF-8 character split across chunks is rejoined byte for byte', (t) => {
  const bytes = Buffer.from('✉\n', 'utf8'); // E2 9C 89 0A
  const lines = frame(100, bytes.subarray(0, 1), bytes.subarray(1, 2), bytes.subarray(2));
  t.is(lines.length, 1);
  t.true((lines[0] as Buffer).equals(Buffer.from('✉', 'utf8')));
});

test('a partial line is kept across push() calls', (t) => {
  const framer = new LineFramer(100);
  framer.push(Buffer.from('COMP'));
  t.is(framer.next(), null);
  t.is(framer.partialBytes, 4);
  framer.push(Buffer.from('OSE al'));
  t.is(framer.next(), null);
  t.is(framer.partialBytes, 10);
  framer.push(Buffer.from('ice\nRE'));
  t.is(framer.next()?.toString(), 'COMPOSE alice');
  t.is(framer.next(), null);
  t.is(framer.partialBytes, 2);
  framer.push(Buffer.from('AD\n'));
  t.is(framer.next()?.toString(), 'READ');
  t.is(framer.next(), null);
  t.is(framer.partialBytes, 0);
});

test('whole lines left unread in a chunk are not an unfinished line, before or after detach()', (t) => {
  const framer = new LineFramer(100);
  framer.push(Buffer.from('READ\nREAD\nREAD\nCOMP'));
  t.is(framer.next()?.toString(), 'READ');
  t.true(framer.hasUnreadBytes);
  t.is(framer.partialBytes, 0);
  framer.detach();
  t.is(framer.partialBytes, 0);
  t.is(framer.next()?.toString(), 'READ');
  t.is(framer.next()?.toString(), 'READ');
  t.is(framer.next(), null);
  // Read to the end, the start of a line is held, and counted.
  t.is(framer.partialBytes, 4);
});

test('next() returns null when more bytes are needed, and before any push', (t) => {
  const framer = new LineFramer(100);
  t.is(framer.next(), null);
  framer.push(Buffer.from('no line end yet'));
  t.is(framer.next(), null);
  t.is(framer.next(), null);
  t.false(framer.hasUnreadBytes);
});

test('next() hands out one line at a time, leaving the rest of the chunk unread', (t) => {
  const framer = new LineFramer(100);
  framer.push(Buffer.from('a\nb\nc'));
  t.is(framer.next()?.toString(), 'a');
  t.true(framer.hasUnreadBytes);
  t.is(framer.next()?.toString(), 'b');
  t.true(framer.hasUnreadBytes);
  t.is(framer.next(), null);
  t.false(framer.hasUnreadBytes);
});

test('push() before the previous chunk was read to the end throws', (t) => {
  const framer = new LineFramer(100);
  framer.push(Buffer.from('a\nb\n'));
  t.is(framer.next()?.toString(), 'a');
  t.throws(() => framer.push(Buffer.from('c\n')));
});

test('an empty push changes nothing', (t) => {
  const framer = new LineFramer(100);
  framer.push(Buffer.from('ab'));
  t.is(framer.next(), null);
  framer.push(Buffer.alloc(0));
  t.is(framer.next(), null);
  framer.push(Buffer.from('\n'));
  t.is(framer.next()?.toString(), 'ab');
});

test('lines returned earlier stay intact after later pushes', (t) => {
  const framer = new LineFramer(100);
  const lines: Buffer[] = [];
  for (const chunk of ['ab', 'c\nde', 'f\ngh', 'i\n', 'jk', 'l\n']) {
    framer.push(Buffer.from(chunk));
    lines.push(...drain(framer));
  }
  t.deepEqual(strings(lines), ['abc', 'def', 'ghi', 'jkl']);
});

test('a line of exactly maxLineBytes is accepted', (t) => {
  const max = 16;
  const line = 'x'.repeat(max);
  t.deepEqual(strings(frame(max, `${line}\n`)), [line]);
  t.deepEqual(strings(frame(max, line, '\n')), [line]);
  t.deepEqual(strings(frame(max, ...line.split(''), '\n')), [line]);
});

test('a line of exactly maxLineBytes with a trailing CR is accepted', (t) => {
  const max = 16;
  const line = 'x'.repeat(max);
  t.deepEqual(strings(frame(max, `${line}\r\n`)), [line]);
  t.deepEqual(strings(frame(max, `${line}\r`, '\n')), [line]);
  t.deepEqual(strings(frame(max, line, '\r', '\n')), [line]);
  t.deepEqual(strings(frame(max, ...`${line}\r\n`.split(''))), [line]);
});

test('a line of maxLineBytes + 1 throws PH_ERR_PROTOCOL_LINE_TOO_LONG', (t) => {
  const max = 16;
  const line = 'x'.repeat(max + 1);
  t.throws(() => frame(max, `${line}\n`), TOO_LONG);
  t.throws(() => frame(max, `${line}\r\n`), TOO_LONG);
  t.throws(() => frame(max, line.slice(0, 5), line.slice(5), '\n'), TOO_LONG);
  // maxLineBytes + 1 content bytes where the last is a CR that is *not* dropped.
  t.throws(() => frame(max, `${'x'.repeat(max)}\r\r\n`), TOO_LONG);
  t.throws(() => frame(max, 'x'.repeat(max), '\r\r', '\n'), TOO_LONG);
});

test('an over-long line is detected before its LF arrives', (t) => {
  const max = 16;
  const framer = new LineFramer(max);
  // max + 2 bytes and no LF: no LF can save this line, so the framer must not wait for one.
  framer.push(Buffer.alloc(max + 2, 0x78));
  t.throws(() => framer.next(), TOO_LONG);
});

test('maxLineBytes + 1 bytes without LF throw at once unless the last may be the CR of CRLF', (t) => {
  const max = 16;
  const framer = new LineFramer(max);
  framer.push(Buffer.alloc(max + 1, 0x78));
  t.throws(() => framer.next(), TOO_LONG);

  const waiting = new LineFramer(max);
  waiting.push(Buffer.concat([Buffer.alloc(max, 0x78), Buffer.from([CR])]));
  t.is(waiting.next(), null);
  t.is(waiting.partialBytes, max + 1);
  waiting.push(Buffer.from('x'));
  t.throws(() => waiting.next(), TOO_LONG);
});

test('an over-long line built one byte at a time throws at the byte that passes the limit', (t) => {
  const max = 16;
  const framer = new LineFramer(max);
  for (let i = 0; i < max; i++) {
    framer.push(Buffer.from('x'));
    t.is(framer.next(), null);
  }
  t.is(framer.partialBytes, max);
  framer.push(Buffer.from('y'));
  t.throws(() => framer.next(), TOO_LONG);
});

test('a huge chunk with no LF throws on the first next()', (t) => {
  const framer = new LineFramer(1024);
  framer.push(Buffer.alloc(1024 * 1024, 0x61));
  t.throws(() => framer.next(), TOO_LONG);
});

test('lines before an over-long line are still handed out', (t) => {
  const framer = new LineFramer(8);
  framer.push(Buffer.from('ok\nalso ok\nway too long for it\n'));
  t.is(framer.next()?.toString(), 'ok');
  t.is(framer.next()?.toString(), 'also ok');
  t.throws(() => framer.next(), TOO_LONG);
});

// ---- Properties ---------------------------------------------------------------------

/**
 * What the protocol says a stream frames into: the complete lines (one CR before LF
 * dropped) up to the first one longer than `max`, and whether the stream is refused.
 * The unfinished tail is refused when no LF could bring it within the limit, i.e. when
 * it would be too long even if an LF came next.
 */
function model(stream: Uint8Array, max: number): { lines: Buffer[]; tooLong: boolean; tail: number } {
  const lines: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < stream.length; i++) {
    if (stream[i] !== LF) continue;
    const end = i > start && stream[i - 1] === CR ? i - 1 : i;
    if (end - start > max) return { lines, tooLong: true, tail: 0 };
    lines.push(Buffer.from(stream.subarray(start, end)));
    start = i + 1;
  }
  const tail = stream.length - start;
  const tailContent = tail > 0 && stream[stream.length - 1] === CR ? tail - 1 : tail;
  return { lines, tooLong: tailContent > max, tail };
}

function split(stream: Uint8Array, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((cut) => cut % (stream.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const point of [...points, stream.length]) {
    // Empty chunks are kept on purpose: push() must take them in stride.
    chunks.push(Buffer.from(stream.subarray(from, point)));
    from = point;
  }
  return chunks;
}

interface Run {
  lines: Buffer[];
  tooLong: boolean;
  /** The most bytes of an unfinished line held once a chunk was read to the end. */
  maxHeld: number;
  /** partialBytes after the last chunk was read to the end. */
  held: number;
  /** Whether partialBytes, each time a chunk was read to the end, was exactly the unfinished tail. */
  heldIsTail: boolean;
}

function run(chunks: Buffer[], max: number): Run {
  const framer = new LineFramer(max);
  const out: Run = { lines: [], tooLong: false, maxHeld: 0, held: 0, heldIsTail: true };
  let seen = 0;
  let lastLf = -1;
  try {
    for (const chunk of chunks) {
      framer.push(chunk);
      for (;;) {
        const line = framer.next();
        if (line === null) break;
        out.lines.push(line);
        // Once a line is handed out, no unfinished line is held: the rest of the chunk
        // (whole lines, perhaps the start of one) is not yet anyone's partial line.
        if (framer.partialBytes !== 0) out.heldIsTail = false;
      }
      const at = chunk.lastIndexOf(LF);
      if (at !== -1) lastLf = seen + at;
      seen += chunk.length;
      out.held = framer.partialBytes;
      out.maxHeld = Math.max(out.maxHeld, out.held);
      if (out.held !== seen - lastLf - 1) out.heldIsTail = false;
      if (framer.hasUnreadBytes) out.heldIsTail = false;
    }
  } catch (err) {
    if (!(err instanceof ProtocolError) || err.code !== 'PH_ERR_PROTOCOL_LINE_TOO_LONG') throw err;
    out.tooLong = true;
  }
  return out;
}

// Bytes that matter to the framer (LF, CR) come often; the rest stand for any byte.
const byte = fc.oneof(
  { weight: 2, arbitrary: fc.constant(LF) },
  { weight: 2, arbitrary: fc.constant(CR) },
  { weight: 1, arbitrary: fc.constantFrom(0x00, 0xff, 0xe9, 0x20) },
  { weight: 8, arbitrary: fc.integer({ min: 0x21, max: 0x7e }) },
);
// Streams built from lines of every length around the limit, so lines of exactly max,
// max + 1 and max + 2 (with and without CR) show up often, plus free-form byte soup.
const lineOf = (max: number) =>
  fc
    .record({
      length: fc.oneof(fc.integer({ min: 0, max: max + 2 }), fc.integer({ min: 0, max: 3 * max })),
      fill: fc.integer({ min: 0x21, max: 0x7e }),
      cr: fc.constantFrom('', '\r', '\r\r'),
      lf: fc.boolean(),
    })
    .map(({ length, fill, cr, lf }) =>
      Buffer.concat([Buffer.alloc(length, fill), Buffer.from(cr, 'latin1'), lf ? Buffer.from([LF]) : Buffer.alloc(0)]),
    );
const scenario = fc.integer({ min: 1, max: 24 }).chain((max) =>
  fc.record({
    max: fc.constant(max),
    stream: fc.oneof(
      fc.array(byte, { maxLength: 6 * max + 8 }).map((bytes) => Uint8Array.from(bytes)),
      fc.array(fc.oneof(lineOf(max), fc.array(byte, { maxLength: 8 }).map((b) => Buffer.from(b))), { maxLength: 10 }).map(
        (parts) => new Uint8Array(Buffer.concat(parts)),
      ),
    ),
    cuts: fc.array(fc.nat(), { maxLength: 40 }),
  }),
);

test('property: any chunking yields the same lines as one push of the whole stream', (t) => {
  fc.assert(
    fc.property(scenario, ({ max, stream, cuts }) => {
      const whole = run([Buffer.from(stream)], max);
      const chunked = run(split(stream, cuts), max);
      const bytewise = run(split(stream, Array.from({ length: stream.length }, (_, i) => i)), max);
      for (const other of [chunked, bytewise]) {
        if (other.tooLong !== whole.tooLong) return false;
        if (other.lines.length !== whole.lines.length) return false;
        if (!other.lines.every((line, i) => line.equals(whole.lines[i] as Buffer))) return false;
      }
      return true;
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test('property: lines, refusal and held bytes match the protocol under random chunkings', (t) => {
  fc.assert(
    fc.property(scenario, ({ max, stream, cuts }) => {
      const expected = model(stream, max);
      const got = run(split(stream, cuts), max);
      // Throws exactly when some line's content (CR stripped) passes the limit.
      if (got.tooLong !== expected.tooLong) return false;
      if (got.lines.length !== expected.lines.length) return false;
      if (!got.lines.every((line, i) => line.equals(expected.lines[i] as Buffer))) return false;
      // Never more than maxLineBytes + 1 bytes of an unfinished line held.
      if (got.maxHeld > max + 1) return false;
      if (!got.heldIsTail) return false;
      if (!expected.tooLong && got.held !== expected.tail) return false;
      return true;
    }),
    { numRuns: 400 },
  );
  t.pass();
});

test('detach() gives unread bytes a buffer of their own: the chunk may be reused meanwhile', (t) => {
  const framer = new LineFramer(100);
  const chunk = Buffer.from('one\ntwo\nthr');
  framer.push(chunk);
  t.deepEqual(framer.next(), Buffer.from('one'));
  framer.detach();
  chunk.fill(0x21); // the shared read buffer takes another connection's bytes
  t.deepEqual(framer.next(), Buffer.from('two'));
  t.is(framer.next(), null);
  framer.push(Buffer.from('ee\n'));
  t.deepEqual(framer.next(), Buffer.from('three'));
});

test('big lines spanning chunks, back to back: each comes out whole, finished in place in one buffer the next reuses', (t) => {
  const big = (i: number): string => String.fromCharCode(0x61 + i).repeat(20_000);
  const stream = Buffer.from(Array.from({ length: 5 }, (_, i) => `COMPOSE u${i}\n${big(i)}\n`).join(''), 'latin1');
  // Every big line starts more than 4 KiB before the end of its chunk (so it may take the
  // spare buffer), and none ends at a chunk's end (which would let the spare go).
  const piece = 15_000;
  const framer = new LineFramer(100_000);
  const lines: string[] = [];
  const buffers = new Set<ArrayBufferLike>();
  for (let at = 0; at < stream.length; at += piece) {
    framer.push(stream.subarray(at, at + piece));
    while (framer.nextLine()) {
      const line = framer.source.toString('latin1', framer.start, framer.end);
      if (line.length > 1_000) {
        // Ends within a chunk, never at its end: the buffer is kept for the next line.
        t.not((at + framer.end) % piece, 0);
        buffers.add(framer.source.buffer);
      }
      lines.push(line.length > 1_000 ? `${line[0]}x${line.length}` : line);
    }
  }
  t.deepEqual(lines, ['COMPOSE u0', 'ax20000', 'COMPOSE u1', 'bx20000', 'COMPOSE u2', 'cx20000', 'COMPOSE u3', 'dx20000', 'COMPOSE u4', 'ex20000']);
  t.is(buffers.size, 1, 'one buffer for every big line');
});

test('a big line finished as the reads run out leaves no buffer behind: the next gets a new one', (t) => {
  const framer = new LineFramer(100_000);
  const line = `${'z'.repeat(20_000)}\n`;
  const sources: ArrayBufferLike[] = [];
  for (let i = 0; i < 2; i++) {
    framer.push(Buffer.from(line.slice(0, 10_000)));
    t.false(framer.nextLine());
    framer.push(Buffer.from(line.slice(10_000)));
    t.true(framer.nextLine());
    t.is(framer.end - framer.start, 20_000);
    sources.push(framer.source.buffer);
    t.false(framer.nextLine(), 'the reads are used up');
    t.is(framer.source.length, 0, 'nor is the last line kept');
  }
  t.not(sources[0], sources[1]);
  t.is(framer.partialBytes, 0);
});
