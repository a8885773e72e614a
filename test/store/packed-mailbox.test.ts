import test from 'ava';
import fc from 'fast-check';
import { PackedMailbox } from '../../lib/store/packed-mailbox.js';
import { PagePool } from '../../lib/store/page-pool.js';

function take(box: PackedMailbox): { senderId: number; body: Buffer } | null {
  if (!box.shift()) return null;
  return { senderId: box.senderId, body: Buffer.from(box.source.subarray(box.bodyStart, box.bodyEnd)) };
}

test('messages come out in order, byte for byte, with their sender ids', (t) => {
  const box = new PackedMailbox(new PagePool());
  const bodies = [Buffer.alloc(0), Buffer.from([0, 0, 0]), Buffer.from('hello'), Buffer.alloc(300, 0xff), Buffer.alloc(70_000, 0x80)];
  bodies.forEach((body, i) => box.push(i * 1000, body, 0, body.length));
  t.is(box.count, bodies.length);
  for (const [i, body] of bodies.entries()) t.deepEqual(take(box), { senderId: i * 1000, body });
  t.is(take(box), null);
  t.is(box.count, 0);
});

test('a range of the given buffer is what is stored', (t) => {
  const box = new PackedMailbox(new PagePool());
  box.push(7, Buffer.from('xxHIxx'), 2, 4);
  t.deepEqual(take(box), { senderId: 7, body: Buffer.from('HI') });
});

test('sender ids of any size survive (varints of one to five bytes)', (t) => {
  const box = new PackedMailbox(new PagePool());
  const ids = [0, 126, 127, 128, 16_383, 16_384, 2 ** 21, 2 ** 31 - 2];
  for (const id of ids) box.push(id, Buffer.from('m'), 0, 1);
  for (const id of ids) t.is(take(box)?.senderId, id);
});

test('a 64-byte message costs under 75 bytes in a full mailbox (an object and a Buffer each would cost ~240)', (t) => {
  const box = new PackedMailbox(new PagePool());
  const body = Buffer.alloc(64, 0x61);
  for (let i = 0; i < 1000; i++) box.push(i % 50, body, 0, body.length);
  const perMessage = box.bytes / 1000;
  t.true(perMessage < 75, `${perMessage} bytes per message`);
  t.true(perMessage >= 66, `${perMessage} bytes per message`);
});

test("a mailbox's unused end is a fraction of its last chunk: the last chunk grows as messages come, up to the biggest page", (t) => {
  const body = Buffer.alloc(64, 0x61);
  // A 64-byte message from sender 1 is a 66-byte record; a 4 KiB page holds 62.
  for (const n of [1, 3, 4, 40, 62, 63, 100, 500, 1000, 1999]) {
    const box = new PackedMailbox(new PagePool());
    for (let i = 0; i < n; i++) box.push(1, body, 0, body.length);
    const full = Math.floor(n / 62);
    const tail = (n % 62) * 66;
    t.true(box.bytes <= full * 4096 + Math.max(256, 2 * tail), `${n} messages: ${box.bytes} bytes`);
    for (let i = 0; i < n; i++) t.true(box.shift() && box.bodyEnd - box.bodyStart === 64);
  }
});

test('a mailbox read as it is written keeps one first-size chunk, its read records dropped as it fills', (t) => {
  const pool = new PagePool();
  const box = new PackedMailbox(pool);
  for (let i = 0; i < 3; i++) box.push(i, Buffer.from([i]), 0, 1);
  for (let i = 3; i < 10_000; i++) {
    box.push(i, Buffer.from([i & 0xff]), 0, 1);
    t.true(box.shift());
    if (box.senderId !== i - 3 || box.source[box.bodyStart] !== ((i - 3) & 0xff)) t.fail(`message ${i - 3} came out as ${box.senderId}`);
    if (box.bytes !== 256 || pool.usedBytes !== 256) t.fail(`${box.bytes} bytes held after ${i} messages`);
  }
  t.is(box.count, 3);
});

test('draining gives chunk memory back as it goes', (t) => {
  const box = new PackedMailbox(new PagePool());
  const body = Buffer.alloc(64, 0x61);
  for (let i = 0; i < 1000; i++) box.push(1, body, 0, body.length);
  const full = box.bytes;
  for (let i = 0; i < 900; i++) take(box);
  t.true(box.bytes < full / 4, `${box.bytes} of ${full} bytes still held with 100 of 1000 messages left`);
});

test('property: any mix of pushes and shifts behaves like an array', (t) => {
  const op = fc.oneof(
    fc.record({ push: fc.uint8Array({ maxLength: 9000 }), sender: fc.nat({ max: 100_000 }) }),
    fc.constant({ shift: true as const }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
      const box = new PackedMailbox(new PagePool());
      const model: { senderId: number; body: Buffer }[] = [];
      for (const step of ops) {
        if ('push' in step) {
          box.push(step.sender, step.push, 0, step.push.length);
          model.push({ senderId: step.sender, body: Buffer.from(step.push) });
        } else {
          const got = take(box);
          const want = model.shift() ?? null;
          if (JSON.stringify(got) !== JSON.stringify(want)) return false;
        }
        if (box.count !== model.length) return false;
      }
      return true;
    }),
    { numRuns: 200 },
  );
  t.pass();
});

test('property: growthFor() never says less than a push takes, held memory stays near the unread records, and release() gives every page back', (t) => {
  // Mostly pushes, so that mailboxes grow to many pages before draining.
  const op = fc.oneof(
    { arbitrary: fc.record({ push: fc.nat({ max: 5000 }), sender: fc.oneof(fc.nat({ max: 200 }), fc.nat({ max: 2 ** 31 - 2 })) }), weight: 5 },
    { arbitrary: fc.record({ shift: fc.integer({ min: 1, max: 6 }) }), weight: 1 },
  );
  fc.assert(
    fc.property(fc.array(op, { minLength: 50, maxLength: 600, size: 'max' }), (ops) => {
      const pool = new PagePool();
      const box = new PackedMailbox(pool);
      const unread: number[] = [];
      let biggest = 0;
      // Held memory: at least the unread bodies; at most about twice their records (a
      // record just over half a page leaves the rest of it unused), the first chunks and
      // a chunk read to its end (let go at the next shift).
      const heldNearUnread = (): boolean => {
        const bodies = unread.reduce((a, b) => a + b, 0);
        return box.bytes >= bodies && box.bytes <= 2 * (bodies + 6 * unread.length) + 8192 + Math.max(4096, biggest + 6);
      };
      const shift = (): boolean => {
        if (!box.shift()) return false;
        if (box.bodyEnd - box.bodyStart !== unread.shift()) throw new Error('a body of the wrong length');
        return true;
      };
      for (const step of ops) {
        if ('push' in step) {
          const said = box.growthFor(step.push);
          const before = box.bytes;
          box.push(step.sender, Buffer.alloc(step.push, 1), 0, step.push);
          if (box.bytes - before > said) return false;
          unread.push(step.push);
          biggest = Math.max(biggest, step.push);
        } else {
          for (let i = 0; i < step.shift; i++) shift();
        }
        if (!heldNearUnread()) return false;
      }
      // Half read, then dropped: the rest of its pages go back too.
      for (let half = unread.length >>> 1; half > 0; half--) if (!shift() || !heldNearUnread()) return false;
      box.release();
      // One slab at most is kept per page size (five sizes), and four spares.
      return box.bytes === 0 && box.count === 0 && !box.shift() && pool.slabs <= 9;
    }),
    { numRuns: 200 },
  );
  t.pass();
});

test('moveTo() copies every page into the new pool, messages intact, and takes nothing more from the old', (t) => {
  const old = new PagePool();
  const box = new PackedMailbox(old);
  const bodies = Array.from({ length: 300 }, (_, i) => Buffer.alloc(i === 150 ? 6000 : 40 + (i % 50), i % 251));
  for (const [i, body] of bodies.entries()) box.push(i, body, 0, body.length);
  for (let i = 0; i < 100; i++) take(box);
  const fresh = new PagePool();
  const usedBefore = old.usedBytes;
  box.moveTo(fresh);
  // Every page the mailbox held now comes from the new pool (the 6,000-byte message's
  // chunk is its own buffer and moves as it is).
  t.is(fresh.usedBytes, usedBefore);
  for (const [i, body] of bodies.slice(100).entries()) box.push(1000 + i, body, 0, body.length);
  t.is(old.usedBytes, usedBefore, 'the old pool is not asked for pages again');
  for (const [i, body] of bodies.slice(100).entries()) t.deepEqual(take(box), { senderId: 100 + i, body });
  for (const [i, body] of bodies.slice(100).entries()) t.deepEqual(take(box), { senderId: 1000 + i, body });
  t.is(take(box), null);
});
