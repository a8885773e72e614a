import test from 'ava';
import { SenderTable, senderCost } from '../../lib/store/sender-table.js';

test('one id per name while messages use it, with the name and its bytes', (t) => {
  const senders = new SenderTable();
  const alice = senders.acquire('alice');
  t.is(senders.acquire('alice'), alice);
  const bob = senders.acquire('bob');
  t.not(bob, alice);
  t.is(senders.name(alice), 'alice');
  t.deepEqual(senders.bytes(bob), Buffer.from('bob'));
  t.is(senders.size, 2);
  senders.release(alice);
  t.is(senders.size, 2, 'alice still has a message');
  senders.release(alice);
  t.is(senders.size, 1);
  // Used again before any sweep: the same id.
  t.is(senders.acquire('alice'), alice);
  t.is(senders.size, 2);
});

test('unused senders are forgotten in sweeps and their ids reused; the ids in use never change', (t) => {
  const senders = new SenderTable();
  const kept = senders.acquire('kept');
  const ids = new Set<number>();
  for (let round = 0; round < 5; round++) {
    for (let i = 0; i < 3000; i++) {
      const id = senders.acquire(`s${round}-${i}`);
      ids.add(id);
      senders.release(id);
    }
  }
  // 15,000 names came and went; only a bounded number of ids was ever needed.
  t.true(ids.size < 5000, `${ids.size} ids for 15000 passing senders`);
  t.is(senders.size, 1);
  t.is(senders.name(kept), 'kept');
  t.is(senders.acquire('kept'), kept);
});

test('a million messages from a thousand senders, drained, leave no sender in use', (t) => {
  const senders = new SenderTable();
  const ids: number[] = [];
  for (let i = 0; i < 1_000_000; i++) ids.push(senders.acquire(`s${i % 1000}`));
  t.is(Math.max(...ids.slice(0, 1000)), 999);
  for (const id of ids) senders.release(id);
  t.is(senders.size, 0);
});

test('heldBytes counts each sender held, in use or not yet swept; a sweep gives it back', (t) => {
  const senders = new SenderTable();
  const alice = senders.acquire('alice');
  senders.acquire('alice');
  t.is(senders.heldBytes, senderCost('alice'), 'a known sender costs nothing more');
  const bob = senders.acquire('bob');
  t.is(senders.heldBytes, senderCost('alice') + senderCost('bob'));
  senders.release(bob);
  t.is(senders.heldBytes, senderCost('alice') + senderCost('bob'), 'unused, not yet swept');
  t.true(senders.reclaim());
  t.is(senders.heldBytes, senderCost('alice'), 'half the table unused: reclaim() sweeps it');
  t.is(senders.find('bob'), -1);
  t.is(senders.find('alice'), alice);
  t.false(senders.reclaim(), 'nothing unused left');
  for (let i = 0; i < 5000; i++) senders.release(senders.acquire(`passing-${i}`));
  // The lazy sweep gave back all but the unused senders it waits for.
  t.true(senders.heldBytes < senderCost('alice') + 1025 * senderCost('passing-0000'), `${senders.heldBytes}`);
});

test("a sender's bytes are a buffer of their own, not a slice of a shared pool", (t) => {
  const senders = new SenderTable();
  const id = senders.acquire('carol');
  const bytes = senders.bytes(id);
  t.deepEqual(bytes, Buffer.from('carol'));
  t.is(bytes.buffer.byteLength, bytes.length);
});
