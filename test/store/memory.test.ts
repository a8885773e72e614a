import test from 'ava';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { MemoryStore } from '../../lib/store/memory.js';
import { SLAB_BYTES } from '../../lib/store/page-pool.js';
import { storeContract } from './store.contract.js';

storeContract('memory', (limits) => new MemoryStore(limits));

// A full collection on demand, so what the slabs hold is measured, not garbage.
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;
// V8 frees a collected ArrayBuffer's memory on another thread, a little later: collect
// until two readings agree (a few rounds at most).
const arrayBufferBytes = (): number => {
  collect();
  let bytes = process.memoryUsage().arrayBuffers;
  for (let round = 0; round < 5; round++) {
    collect();
    const again = process.memoryUsage().arrayBuffers;
    if (again === bytes) break;
    bytes = again;
  }
  return bytes;
};

// Synchronous from the first measure to the last: no other test runs in between.
test.serial("a stored message costs V8's heap about a byte: a mailbox names its pages by number, with no object each", (t) => {
  const MESSAGES = 500_000;
  const message = { from: 'alice', body: Buffer.alloc(64, 'm') };
  const store = new MemoryStore({ maxMessagesPerUser: 1000 });
  collect();
  const before = process.memoryUsage().heapUsed;
  // One mailbox after another: 500 mailboxes of 1,000 messages, 17 pages each.
  for (let i = 0; i < MESSAGES; i++) store.enqueue(`user-${Math.floor(i / 1000)}`, message);
  collect();
  const perMessage = (process.memoryUsage().heapUsed - before) / MESSAGES;
  // A view of a slab per page cost some 2.4 bytes a message; a page's number, under one.
  t.true(perMessage < 1.5, `${perMessage.toFixed(2)} bytes of heap per message`);
  t.is(store.stats().messages, MESSAGES);
});

test('mailboxes read empty and swept give their pages back, and the slabs go with them', (t) => {
  const MAILBOXES = 20_000;
  const message = { from: 'alice', body: Buffer.alloc(64, 'm') };
  const before = arrayBufferBytes();
  const store = new MemoryStore({ maxMessagesPerUser: 10 });
  for (let i = 0; i < MAILBOXES; i++) store.enqueue(`user-${i}`, message);
  const full = arrayBufferBytes() - before;
  for (let i = 0; i < MAILBOXES; i++) t.not(store.dequeue(`user-${i}`), null);
  const drained = arrayBufferBytes() - before;
  // Each mailbox's first chunk is a 256-byte page: some 5 MB of slabs when full (less a
  // little that other tests' garbage held before).
  t.true(full >= MAILBOXES * 200, `full: ${full} bytes in slabs`);
  // An emptied mailbox keeps its first chunk until a sweep drops it; sweeps run as the
  // emptied ones pile up, so only the last few hundred are left holding a page. The pool
  // keeps four slabs whose pages all came back as spares.
  t.true(drained < full / 10 + 4 * SLAB_BYTES, `drained: ${drained} of ${full} bytes still in slabs`);
  t.is(store.stats().messages, 0);
});

test('memory: past maxMailboxes a new recipient is refused as on a full store; emptied mailboxes, once swept, make room', (t) => {
  const store = new MemoryStore({ maxMessagesPerUser: 10, maxMailboxes: 2 });
  const message = { from: 'zed', body: Buffer.from('hi') };
  t.true(store.enqueue('alice', message).ok);
  t.true(store.enqueue('bob', message).ok);
  t.deepEqual(store.enqueue('carol', message), { ok: false, reason: 'unavailable' });
  t.true(store.enqueue('alice', message).ok, 'a mailbox that exists takes more');
  t.is(store.dequeue('bob')?.from, 'zed');
  t.true(store.enqueue('carol', message).ok, "bob's emptied mailbox was swept for carol's");
  t.is(store.count('carol'), 1);
});

test('memory: a mailbox counts its name against maxBytes', (t) => {
  const store = new MemoryStore({ maxMessagesPerUser: 10 });
  store.enqueue('a', { from: 'zed', body: Buffer.from('hi') });
  const short = store.bytes;
  const other = new MemoryStore({ maxMessagesPerUser: 10 });
  other.enqueue('a'.repeat(200), { from: 'zed', body: Buffer.from('hi') });
  t.is(other.bytes - short, 199);
});
