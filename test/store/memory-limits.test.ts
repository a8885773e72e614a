// The in-memory store's cap (maxBytes): what it counts, and that a drained store takes
// as much again.
import test from 'ava';
import { MemoryStore, mailboxCost } from '../../lib/store/memory.js';
import { senderCost } from '../../lib/store/sender-table.js';
import { ENQUEUED, type RangedMessage, STORE_UNAVAILABLE, isRanged } from '../../lib/store/store.js';

const KiB = 1024;
const body = Buffer.from('x');
// Usernames of the longest kind (256 bytes), each one distinct.
const longName = (prefix: string, i: number): string => `${prefix}-${i}-`.padEnd(256, 'x');

test('each new sender counts against maxBytes, so a flood of distinct senders is refused at the cap', (t) => {
  const maxBytes = 1024 * KiB;
  // One mailbox that takes any number of messages: only the senders can fill the store.
  const store = new MemoryStore({ maxMessagesPerUser: 1_000_000, maxBytes });
  let accepted = 0;
  let leastGrowth = Infinity;
  let result: unknown = ENQUEUED;
  while (accepted < 10_000) {
    const before = store.stats().bytes;
    result = store.enqueue('bob', { from: longName('s', accepted), body });
    if (result !== ENQUEUED) break;
    leastGrowth = Math.min(leastGrowth, store.stats().bytes - before);
    accepted++;
  }
  t.is(result, STORE_UNAVAILABLE, `refused before 10,000 one-byte messages from distinct senders (${accepted} taken)`);
  const each = senderCost(longName('s', 0));
  t.true(leastGrowth >= each, `each new sender added at least ${each} bytes (least: ${leastGrowth})`);
  t.true(store.stats().bytes <= maxBytes);
  t.true(accepted > maxBytes / each - 100 && accepted <= maxBytes / each, `${accepted} senders in ${maxBytes} bytes`);
  // A sender the store holds costs nothing more: its next message adds a record at most.
  const before = store.stats().bytes;
  store.dequeue('bob');
  t.is(store.enqueue('bob', { from: longName('s', 1), body }), ENQUEUED);
  t.true(store.stats().bytes - before < each);
});

test('a drained store takes as many new mailboxes and senders again: what it held for nothing is swept at the cap', (t) => {
  const store = new MemoryStore({ maxMessagesPerUser: 1024, maxBytes: 512 * KiB });
  const fill = (round: string): number => {
    let taken = 0;
    while (store.enqueue(`box-${round}-${taken}`, { from: longName(round, taken), body }) === ENQUEUED) taken++;
    for (let i = 0; i < taken; i++) t.is(store.dequeue(`box-${round}-${i}`)?.from, longName(round, i));
    return taken;
  };
  const first = fill('a');
  t.true(first > 100, `${first} taken`);
  // Drained, it still holds the emptied mailboxes and the senders not yet swept (fewer
  // than a sweep waits for), which must not keep new ones out.
  const second = fill('b');
  t.true(second >= first, `first round ${first}, second ${second}`);
  t.is(store.stats().messages, 0);
});

test('pages given back count against maxBytes, and a store left with a few chunks in each slab packs them and takes as much again', (t) => {
  const maxBytes = 2048 * KiB;
  const store = new MemoryStore({ maxMessagesPerUser: 1024, maxBytes });
  const small = Buffer.alloc(64, 0x61);
  // Many mailboxes of one small message: each a 256-byte page.
  let boxes = 0;
  while (store.enqueue(`small-${boxes}`, { from: 'alice', body: small }) === ENQUEUED) boxes++;
  // Each costs its mailbox (with its name) and a 256-byte page; the slabs' never used ends are not counted.
  t.true(boxes > (0.9 * maxBytes) / (mailboxCost('small-1000') + 256), `${boxes} mailboxes filled the store`);
  // All read but every 64th: each slab of 256-byte pages keeps 16 pages in use, the rest
  // of it given back.
  // The memory store hands out ranges of its own chunks.
  const read = (user: string): RangedMessage | null => {
    const message = store.dequeue(user);
    if (message !== null && !isRanged(message)) throw new Error('the memory store gave a message that is not a range');
    return message;
  };
  const length = (user: string): number | undefined => {
    const message = read(user);
    return message === null ? undefined : message.end - message.start;
  };
  for (let i = 0; i < boxes; i++) if (i % 64 !== 0) t.is(length(`small-${i}`), small.length);
  // Then messages that need 4 KiB pages, which the emptied 256-byte pages cannot serve.
  const big = Buffer.alloc(3000, 0x62);
  let taken = 0;
  while (taken < 10_000 && store.enqueue(`big-${taken}`, { from: 'bob', body: big }) === ENQUEUED) {
    taken++;
    t.true(store.stats().bytes <= maxBytes, `${store.stats().bytes} bytes counted after ${taken} big messages`);
  }
  // Without packing, the slabs held for the scattered few would keep out most of these.
  t.true(taken * 4096 > maxBytes * 0.7, `${taken} messages of 3,000 bytes taken after the small ones were read`);
  for (let i = 0; i < boxes; i += 64) t.is(length(`small-${i}`), small.length, `small-${i} kept its message`);
  for (let i = 0; i < taken; i++) {
    const message = read(`big-${i}`);
    t.true(message !== null && message.end - message.start === big.length && message.source[message.start] === 0x62, `big-${i} kept its message`);
  }
  t.is(store.stats().messages, 0);
});
