import test from 'ava';
import fc from 'fast-check';
import { StoreError } from '../../lib/errors.js';
import type { ComposeCommand } from '../../lib/protocol/commands.js';
import { type Logger, formatLine, silentLogger } from '../../lib/logger.js';
import { ShardCore } from '../../lib/shards/core.js';
import {
  BATCH_HEADER_BYTES,
  OP_COMPOSE,
  OP_COUNT,
  OP_READ,
  ReplyReader,
  beginBatch,
  markResent,
  sealBatch,
  writeCompose,
  writeCount,
  writeRead,
} from '../../lib/shards/messages.js';
import { type PendingReply, ShardRouter } from '../../lib/shards/router.js';
import { MemoryStore } from '../../lib/store/memory.js';
import type { BatchJournal, MailboxStore, StoredMessage } from '../../lib/store/store.js';
import { ByteWriter } from '../../lib/util/bytes.js';
import { fakeBackend } from '../helpers/fake-backend.js';

type Request =
  | { op: 'count'; user: string }
  | { op: 'compose'; to: string; from: string; body: Buffer | string }
  | { op: 'read'; user: string };

const latin1 = (text: string): Buffer => Buffer.from(text, 'latin1');

// Each test's batches carry increasing sequence numbers, as the router sends them.
let nextSeq = 1;

/** A request batch, written with the format's own helpers (lib/shards/messages.ts). */
function batch(requests: Request[], header: { seq?: number; acked?: number; resent?: boolean } = {}): Buffer {
  const writer = new ByteWriter(64);
  beginBatch(writer);
  for (const request of requests) {
    switch (request.op) {
      case 'count':
        writeCount(writer, latin1(request.user));
        break;
      case 'compose': {
        const body = typeof request.body === 'string' ? Buffer.from(request.body, 'utf8') : request.body;
        const to = latin1(request.to);
        writeCompose(writer, to, 0, to.length, latin1(request.from), body, 0, body.length);
        break;
      }
      case 'read':
        writeRead(writer, latin1(request.user));
        break;
    }
  }
  const bytes = writer.take();
  const seq = header.seq ?? nextSeq++;
  sealBatch(bytes, seq, header.acked ?? seq - 1);
  if (header.resent === true) markResent(bytes);
  return bytes;
}

function composeCommand(toSource: Buffer, toStart: number, toEnd: number, source: Buffer, start: number, end: number): ComposeCommand {
  return { kind: 'compose', toSource, toStart, toEnd, source, start, end, to: toSource.subarray(toStart, toEnd), body: source.subarray(start, end) };
}

/** A reply batch split into its records: the wire bytes of each, or null for an aborted one. */
function recordsOrAborted(reply: Buffer): (Buffer | null)[] {
  const out: (Buffer | null)[] = [];
  const reader = new ReplyReader(reply);
  while (reader.next()) out.push(reader.aborted ? null : Buffer.from(reply.subarray(reader.start, reader.end)));
  return out;
}

function records(reply: Buffer): Buffer[] {
  return recordsOrAborted(reply).map((record) => {
    if (record === null) throw new Error('unexpected ABORTED record');
    return record;
  });
}

function core(maxMessagesPerUser = 1024): ShardCore {
  return new ShardCore(new MemoryStore({ maxMessagesPerUser }), silentLogger);
}

/** A MemoryStore seen through the MailboxStore interface, with parts replaced. */
function wrap(store: MemoryStore, parts: Partial<MailboxStore> = {}): MailboxStore {
  return {
    batch: (work) => store.batch(work),
    enqueue: (user, message) => store.enqueue(user, message),
    dequeue: (user) => store.dequeue(user),
    count: (user) => store.count(user),
    close: () => store.close(),
    ...parts,
  };
}

function exchange(shard: ShardCore, requests: Request[]): string[] {
  return records(shard.handle(batch(requests))).map((record) => record.toString('latin1'));
}

test('COUNT of an empty mailbox is `0\\n`', (t) => {
  t.deepEqual(exchange(core(), [{ op: 'count', user: 'alice' }]), ['0\n']);
});

test('COMPOSE answers `MESSAGE SENT\\n`, and COUNT then counts it', (t) => {
  const shard = core();
  const compose = { op: 'compose', to: 'alice', from: 'bob', body: 'hi' } as const;
  t.deepEqual(exchange(shard, [compose, compose, compose]), ['MESSAGE SENT\n', 'MESSAGE SENT\n', 'MESSAGE SENT\n']);
  t.deepEqual(exchange(shard, [{ op: 'count', user: 'alice' }]), ['3\n']);
  t.deepEqual(exchange(shard, [{ op: 'count', user: 'bob' }]), ['0\n']);
});

test('COMPOSE to a full mailbox answers `MESSAGE FAILED\\n`', (t) => {
  const shard = core(2);
  const compose = (body: string): Request => ({ op: 'compose', to: 'alice', from: 'bob', body });
  t.deepEqual(exchange(shard, [compose('1'), compose('2'), compose('3')]), ['MESSAGE SENT\n', 'MESSAGE SENT\n', 'MESSAGE FAILED\n']);
  t.deepEqual(exchange(shard, [{ op: 'count', user: 'alice' }]), ['2\n']);
  // READ frees a slot.
  t.deepEqual(exchange(shard, [{ op: 'read', user: 'alice' }, compose('4'), compose('5')]), ['bob\n1\n', 'MESSAGE SENT\n', 'MESSAGE FAILED\n']);
});

test('READ answers the sender and the message, each on its line: `bob\\nHi Alice!\\n`', (t) => {
  const shard = core();
  exchange(shard, [{ op: 'compose', to: 'alice', from: 'bob', body: 'Hi Alice!' }]);
  const reply = shard.handle(batch([{ op: 'read', user: 'alice' }]));
  t.deepEqual(records(reply), [Buffer.from('bob\nHi Alice!\n')]);
  t.deepEqual(exchange(shard, [{ op: 'count', user: 'alice' }]), ['0\n'], 'READ removed it');
});

test('READ of an empty mailbox answers `READ ERROR\\n`', (t) => {
  t.deepEqual(exchange(core(), [{ op: 'read', user: 'alice' }]), ['READ ERROR\n']);
});

// The format pinned byte for byte (lib/shards/messages.ts), so the helpers on both
// sides cannot drift together unnoticed.
test('the exact request batch bytes', (t) => {
  const request = batch(
    [
      { op: 'count', user: 'a' },
      { op: 'compose', to: 'b', from: 'cd', body: 'hi' },
      { op: 'read', user: 'a' },
    ],
    { seq: 3, acked: 2, resent: true },
  );
  const expected = Buffer.from([
    ...[3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0], // seq 3, acked 2, FLAG_RESENT
    ...[1, 1, 0, 0x61], // OP_COUNT 'a'
    ...[2, 1, 0, 0x62, 2, 0, 0x63, 0x64, 2, 0, 0, 0, 0x68, 0x69], // OP_COMPOSE to 'b' from 'cd' body 'hi'
    ...[3, 1, 0, 0x61], // OP_READ 'a'
  ]);
  t.deepEqual(request, expected);
});

test('the exact reply batch bytes', (t) => {
  const reply = core().handle(batch([{ op: 'count', user: 'a' }, { op: 'read', user: 'a' }]));
  // The wire bytes together, then each reply's length, then how many replies.
  t.deepEqual(reply, Buffer.concat([Buffer.from('0\nREAD ERROR\n'), Buffer.from([2, 0, 0, 0, 11, 0, 0, 0]), Buffer.from([2, 0, 0, 0])]));
});

test('records come back in request order, each seeing the ones before it', (t) => {
  t.deepEqual(
    exchange(core(), [
      { op: 'count', user: 'alice' },
      { op: 'read', user: 'alice' },
      { op: 'compose', to: 'alice', from: 'bob', body: 'Hi Alice!' },
      { op: 'compose', to: 'alice', from: 'carol', body: 'second' },
      { op: 'count', user: 'alice' },
      { op: 'read', user: 'alice' },
      { op: 'count', user: 'alice' },
      { op: 'read', user: 'alice' },
      { op: 'read', user: 'alice' },
      { op: 'count', user: 'alice' },
    ]),
    ['0\n', 'READ ERROR\n', 'MESSAGE SENT\n', 'MESSAGE SENT\n', '2\n', 'bob\nHi Alice!\n', '1\n', 'carol\nsecond\n', 'READ ERROR\n', '0\n'],
  );
});

test('a batch of no records (just the header) gets a reply of no replies', (t) => {
  const empty = batch([]);
  t.is(empty.length, BATCH_HEADER_BYTES);
  t.deepEqual(core().handle(empty), Buffer.from([0, 0, 0, 0]));
});

test('message bytes go back out exactly: NUL, CR, Latin-1, 0xFF, UTF-8, empty', (t) => {
  const shard = core();
  const bodies = [
    Buffer.from([0x00, 0x0d, 0xe9, 0xff, 0x00]),
    Buffer.from('héllo ✉ 🐦', 'utf8'),
    Buffer.alloc(0),
    Buffer.from(Array.from({ length: 256 }, (_, i) => i).filter((byte) => byte !== 0x0a)),
  ];
  exchange(shard, bodies.map((body) => ({ op: 'compose', to: 'alice', from: 'bob', body })));
  const replies = records(shard.handle(batch(bodies.map(() => ({ op: 'read', user: 'alice' })))));
  t.is(replies.length, bodies.length);
  for (const [i, body] of bodies.entries()) {
    t.deepEqual(replies[i], Buffer.concat([Buffer.from('bob\n'), body, Buffer.from('\n')]));
  }
});

test('a 64 KiB message and a 256-byte sender name fit (the reply batch grows)', (t) => {
  const shard = core();
  const body = Buffer.alloc(64 * 1024, 0x61);
  body[0] = 0x00;
  body[body.length - 1] = 0xff;
  const sender = 's'.repeat(256);
  const receiver = 'r'.repeat(256);
  t.deepEqual(exchange(shard, [{ op: 'compose', to: receiver, from: sender, body }]), ['MESSAGE SENT\n']);
  const [reply] = records(shard.handle(batch([{ op: 'read', user: receiver }, { op: 'read', user: receiver }])));
  t.deepEqual(reply, Buffer.concat([Buffer.from(`${sender}\n`), body, Buffer.from('\n')]));
});

test('names are case sensitive across the batch format', (t) => {
  t.deepEqual(
    exchange(core(), [
      { op: 'compose', to: 'Bob', from: 'alice', body: 'upper' },
      { op: 'count', user: 'bob' },
      { op: 'read', user: 'bob' },
      { op: 'read', user: 'Bob' },
    ]),
    ['MESSAGE SENT\n', '0\n', 'READ ERROR\n', 'alice\nupper\n'],
  );
});

test('a reply batch stays intact after the next batch is handled', (t) => {
  // Connections keep ranges of a reply batch until they have written them: the core must
  // not write the next batch over it.
  const shard = core();
  const first = shard.handle(batch([{ op: 'compose', to: 'a', from: 'b', body: 'x' }, { op: 'count', user: 'a' }]));
  const copy = Buffer.from(first);
  shard.handle(batch([{ op: 'read', user: 'a' }, { op: 'read', user: 'a' }, { op: 'count', user: 'zzzz' }]));
  shard.handle(batch([{ op: 'compose', to: 'b', from: 'c', body: 'y'.repeat(5000) }]));
  t.deepEqual(first, copy);
});

test('the stored message does not depend on the request batch buffer', (t) => {
  const shard = core();
  const request = batch([{ op: 'compose', to: 'alice', from: 'bob', body: 'kept' }]);
  shard.handle(request);
  request.fill(0x00);
  t.deepEqual(exchange(shard, [{ op: 'read', user: 'alice' }]), ['bob\nkept\n']);
});

test('a batch given as a view at an offset into a larger buffer', (t) => {
  const bytes = batch([{ op: 'compose', to: 'alice', from: 'bob', body: 'offset' }, { op: 'read', user: 'alice' }]);
  const backing = new Uint8Array(bytes.length + 13);
  backing.set(bytes, 7);
  const view = backing.subarray(7, 7 + bytes.length);
  t.deepEqual(
    records(core().handle(view)).map((record) => record.toString()),
    ['MESSAGE SENT\n', 'bob\noffset\n'],
  );
});

test('an unknown op is refused', (t) => {
  t.throws(() => core().handle(Uint8Array.from([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 99, 0, 0])), { message: /unknown shard op 99/ });
});

test('close() closes the store', (t) => {
  const store = new MemoryStore({ maxMessagesPerUser: 10 });
  let closed = 0;
  const spy = wrap(store, {
    close: () => {
      closed++;
      store.close();
    },
  });
  new ShardCore(spy, silentLogger).close();
  t.is(closed, 1);
});

test('each batch runs inside one store.batch() call', (t) => {
  const store = new MemoryStore({ maxMessagesPerUser: 10 });
  let batches = 0;
  let inside = false;
  let outsideCalls = 0;
  const spy = wrap(store, {
    batch: (work) => {
      batches++;
      inside = true;
      try {
        return work();
      } finally {
        inside = false;
      }
    },
    enqueue: (user, message) => {
      if (!inside) outsideCalls++;
      return store.enqueue(user, message);
    },
    dequeue: (user) => {
      if (!inside) outsideCalls++;
      return store.dequeue(user);
    },
  });
  const shard = new ShardCore(spy, silentLogger);
  shard.handle(batch([{ op: 'compose', to: 'a', from: 'b', body: '1' }, { op: 'compose', to: 'a', from: 'b', body: '2' }]));
  shard.handle(batch([{ op: 'read', user: 'a' }, { op: 'count', user: 'a' }]));
  t.is(batches, 2);
  t.is(outsideCalls, 0);
});

test('a batch that cannot commit because of its COMPOSEs is committed again without them: its READs are served', (t) => {
  // A transactional store on a full disk: a batch that writes rolls back and throws, a
  // batch that only reads commits.
  let boxes = new Map<string, StoredMessage[]>([['alice', [{ from: 'bob', body: Buffer.from('kept') }]]]);
  let wrote = false;
  const full: MailboxStore = {
    batch: (work) => {
      const before = new Map([...boxes].map(([user, box]) => [user, [...box]]));
      wrote = false;
      const result = work();
      if (wrote) {
        boxes = before;
        throw new StoreError('PH_ERR_STORE_WRITE_FAILED', 'disk full');
      }
      return result;
    },
    enqueue: (user, message) => {
      wrote = true;
      boxes.set(user, [...(boxes.get(user) ?? []), message]);
      return { ok: true };
    },
    dequeue: (user) => boxes.get(user)?.shift() ?? null,
    count: (user) => boxes.get(user)?.length ?? 0,
    close: () => {},
  };
  const shard = new ShardCore(full, silentLogger);
  const replies = shard.handle(
    batch([
      { op: 'compose', to: 'alice', from: 'carol', body: 'no room' },
      { op: 'read', user: 'alice' },
      { op: 'read', user: 'alice' },
    ]),
  );
  t.deepEqual(records(replies).map(String), ['MESSAGE FAILED\n', 'bob\nkept\n', 'READ ERROR\n']);
  t.is(full.count('alice'), 0, 'the READ was committed');
});

test('a batch the store cannot commit: COMPOSE fails, READ is aborted, LOGIN counts what is stored', (t) => {
  const store = new MemoryStore({ maxMessagesPerUser: 10 });
  store.enqueue('alice', { from: 'bob', body: Buffer.from('kept') });
  const errors: string[] = [];
  const logger: Logger = { ...silentLogger, error: (fields, message) => errors.push(formatLine(fields, message)) };
  let failing = true;
  const flaky = wrap(store, {
    batch: (work) => {
      if (failing) throw new StoreError('PH_ERR_STORE_WRITE_FAILED', 'disk full');
      return store.batch(work);
    },
  });
  const shard = new ShardCore(flaky, logger);
  const replies = recordsOrAborted(
    shard.handle(
      batch([
        { op: 'count', user: 'alice' },
        { op: 'compose', to: 'alice', from: 'carol', body: 'lost' },
        { op: 'read', user: 'alice' },
        { op: 'count', user: 'alice' },
      ]),
    ),
  );
  t.deepEqual(
    replies.map((record) => record?.toString() ?? null),
    ['1\n', 'MESSAGE FAILED\n', null, '1\n'],
  );
  t.is(errors.length, 2, 'the failed commit and the failed retry without COMPOSEs');
  for (const message of errors) t.regex(message, /PH_ERR_STORE_WRITE_FAILED/);
  // The store recovers: the message that was not read is still there, the failed one is not.
  failing = false;
  t.deepEqual(exchange(shard, [{ op: 'read', user: 'alice' }, { op: 'read', user: 'alice' }]), ['bob\nkept\n', 'READ ERROR\n']);
});

test('an error that is not a StoreError is not swallowed', (t) => {
  const store = new MemoryStore({ maxMessagesPerUser: 10 });
  const broken = wrap(store, {
    batch: () => {
      throw new TypeError('bug');
    },
  });
  t.throws(() => new ShardCore(broken, silentLogger).handle(batch([{ op: 'count', user: 'a' }])), { instanceOf: TypeError });
});

test('with a journal: each batch reply is recorded with its link, seq and acked, and a batch sent again is answered from it', (t) => {
  const store = new MemoryStore({ maxMessagesPerUser: 10 });
  const journaled = new Map<string, Buffer>();
  const calls: [link: number, seq: number, acked: number][] = [];
  const journal: BatchJournal = {
    replyFor: (link, seq) => journaled.get(`${link}:${seq}`) ?? null,
    record: (link, seq, reply, ackedThrough) => {
      calls.push([link, seq, ackedThrough]);
      journaled.set(`${link}:${seq}`, Buffer.from(reply));
    },
    forget: (link) => {
      for (const key of [...journaled.keys()]) if (key.startsWith(`${link}:`)) journaled.delete(key);
    },
  };
  const shard = new ShardCore({ ...wrap(store), journal }, silentLogger);
  store.enqueue('alice', { from: 'bob', body: Buffer.from('once') });
  const request = batch([{ op: 'read', user: 'alice' }, { op: 'compose', to: 'alice', from: 'carol', body: 'new' }], { seq: 7, acked: 5 });
  const first = shard.handle(Buffer.from(request), 2);
  t.deepEqual(calls, [[2, 7, 5]]);
  t.deepEqual(records(first).map(String), ['bob\nonce\n', 'MESSAGE SENT\n']);
  // Sent again (its shard restarted before the reply arrived): the same answer, applied once.
  const resent = Buffer.from(request);
  markResent(resent);
  const again = shard.handle(resent, 2);
  t.deepEqual(again, first);
  t.is(store.count('alice'), 1, 'the COMPOSE was not applied twice');
  t.deepEqual(calls, [[2, 7, 5]]);
  // The replayed reply owns its ArrayBuffer, which the shard host transfers.
  t.is(again.byteOffset, 0);
  t.is(again.buffer.byteLength, again.length);
  t.not(again.buffer, journaled.get('2:7')?.buffer);
  // Seq 7 of another link (another acceptor thread) is another batch: applied, not replayed.
  const other = Buffer.from(batch([{ op: 'compose', to: 'alice', from: 'dave', body: 'other link' }], { seq: 7, acked: 0 }));
  markResent(other);
  t.deepEqual(records(shard.handle(other, 3)).map(String), ['MESSAGE SENT\n']);
  t.is(store.count('alice'), 2);
  t.deepEqual(calls, [[2, 7, 5], [3, 7, 0]]);
  // Link 2's thread is gone: its replies go, link 3's stay.
  shard.forgetLink(2);
  t.deepEqual([...journaled.keys()], ['3:7']);
});

test("ShardRouter's batches are the layout these tests build, and its pairing of replies holds", async (t) => {
  const shard = core(1);
  const sent: Buffer[] = [];
  const backend = fakeBackend({
    send: (shardId, requestBatch) => {
      sent.push(Buffer.from(requestBatch));
      router.onReply(shardId, shard.handle(requestBatch));
    },
  });
  const router = new ShardRouter(backend, { replay: false, logger: silentLogger });
  const answers: string[] = [];
  const answer = (op: PendingReply['op'], i: number): PendingReply => ({
    op,
    cancelled: false,
    fill: (source, start, end) => (answers[i] = source.toString('latin1', start, end)),
    abort: () => (answers[i] = 'ABORTED'),
  });

  router.count(latin1('alice'), answer(OP_COUNT, 0));
  // The recipient as a range too, as the parser hands it over.
  router.compose(composeCommand(latin1('>alice<'), 1, 6, latin1('Hi Alice!'), 0, 9), latin1('bob'), answer(OP_COMPOSE, 1));
  router.compose(composeCommand(latin1('alice'), 0, 5, latin1('xno room'), 1, 8), latin1('bob'), answer(OP_COMPOSE, 2));
  router.count(latin1('alice'), answer(OP_COUNT, 3));
  await new Promise((resolve) => setImmediate(resolve));
  router.read(latin1('alice'), answer(OP_READ, 4));
  router.read(latin1('alice'), answer(OP_READ, 5));
  await new Promise((resolve) => setImmediate(resolve));

  t.deepEqual(answers, ['0\n', 'MESSAGE SENT\n', 'MESSAGE FAILED\n', '1\n', 'bob\nHi Alice!\n', 'READ ERROR\n']);
  t.is(sent.length, 2, 'one batch per turn');
  t.deepEqual(
    sent[0],
    batch(
      [
        { op: 'count', user: 'alice' },
        { op: 'compose', to: 'alice', from: 'bob', body: 'Hi Alice!' },
        { op: 'compose', to: 'alice', from: 'bob', body: 'no room' },
        { op: 'count', user: 'alice' },
      ],
      { seq: 1, acked: 0 },
    ),
  );
  t.deepEqual(sent[1], batch([{ op: 'read', user: 'alice' }, { op: 'read', user: 'alice' }], { seq: 2, acked: 1 }));
});

// A model of the protocol's mailboxes: what each reply must be, byte for byte.
function expectedReplies(requests: Request[], cap: number): Buffer[] {
  const boxes = new Map<string, { from: string; body: Buffer }[]>();
  return requests.map((request) => {
    if (request.op === 'count') return Buffer.from(`${boxes.get(request.user)?.length ?? 0}\n`);
    if (request.op === 'compose') {
      const box = boxes.get(request.to) ?? [];
      boxes.set(request.to, box);
      if (box.length >= cap) return Buffer.from('MESSAGE FAILED\n');
      box.push({ from: request.from, body: Buffer.from(request.body) });
      return Buffer.from('MESSAGE SENT\n');
    }
    const message = boxes.get(request.user)?.shift();
    if (message === undefined) return Buffer.from('READ ERROR\n');
    return Buffer.concat([Buffer.from(`${message.from}\n`), message.body, Buffer.from('\n')]);
  });
}

test('property: batches of many mixed records answer as the model says, in order', (t) => {
  const user = fc.constantFrom('alice', 'bob', 'Bob', 'carol', '!x~');
  const request: fc.Arbitrary<Request> = fc.oneof(
    fc.record({ op: fc.constant('count' as const), user }),
    fc.record({
      op: fc.constant('compose' as const),
      to: user,
      from: user,
      body: fc.uint8Array({ maxLength: 40 }).map((bytes) => Buffer.from(bytes)),
    }),
    fc.record({ op: fc.constant('read' as const), user }),
  );
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 6 }),
      fc.array(fc.array(request, { minLength: 1, maxLength: 400 }), { minLength: 1, maxLength: 4 }),
      (cap, batches) => {
        const shard = core(cap);
        const got = batches.flatMap((requests) => records(shard.handle(batch(requests))));
        const expected = expectedReplies(batches.flat(), cap);
        return got.length === expected.length && got.every((reply, i) => reply.equals(expected[i] as Buffer));
      },
    ),
    { numRuns: 200 },
  );
  t.pass();
});

test('one batch of thousands of records', (t) => {
  const requests: Request[] = [];
  for (let i = 0; i < 3000; i++) {
    const user = `u${i % 17}`;
    if (i % 3 === 0) requests.push({ op: 'compose', to: user, from: `s${i % 5}`, body: `m${i}` });
    else if (i % 3 === 1) requests.push({ op: 'count', user });
    else requests.push({ op: 'read', user: `u${(i * 7) % 17}` });
  }
  const got = records(core(50).handle(batch(requests)));
  const expected = expectedReplies(requests, 50);
  t.is(got.length, 3000);
  t.deepEqual(got, expected);
});
