import test from 'ava';
import fc from 'fast-check';
import { PackedMailbox } from '../../lib/store/packed-mailbox.js';

function take(box: PackedMailbox): { senderId: number; body: Buffer } | null {
  if (!box.shift()) return null;
  return { senderId: box.senderId, body: Buffer.from(box.source.subarray(box.bodyStart, box.bodyEnd)) };
}

test('messages come out in order, byte for byte, with their sender ids', (t) => {
  const box = new PackedMailbox();
  const bodies = [Buffer.alloc(0), Buffer.from([0, 0, 0]), Buffer.from('hello'), Buffer.alloc(300, 0xff), Buffer.alloc(70_000, 0x80)];
  bodies.forEach((body, i) => box.push(i * 1000, body, 0, body.length));
  t.is(box.count, bodies.length);
  for (const [i, body] of bodies.entries()) t.deepEqual(take(box), { senderId: i * 1000, body });
  t.is(take(box), null);
  t.is(box.count, 0);
});

test('a range of the given buffer is what is stored', (t) => {
  const box = new PackedMailbox();
  box.push(7, Buffer.from('xxHIxx'), 2, 4);
  t.deepEqual(take(box), { senderId: 7, body: Buffer.from('HI') });
});

test('sender ids of any size survive (varints of one to five bytes)', (t) => {
  const box = new PackedMailbox();
  const ids = [0, 126, 127, 128, 16_383, 16_384, 2 ** 21, 2 ** 31 - 2];
  for (const id of ids) box.push(id, Buffer.from('m'), 0, 1);
  for (const id of ids) t.is(take(box)?.senderId, id);
});

test('a 64-byte message costs under 75 bytes in a full mailbox (an object and a Buffer each would cost ~240)', (t) => {
  const box = new PackedMailbox();
  const body = Buffer.alloc(64, 0x61);
  for (let i = 0; i < 1000; i++) box.push(i % 50, body, 0, body.length);
  const perMessage = box.bytes / 1000;
  t.true(perMessage < 75, `${perMessage} bytes per message`);
  t.true(perMessage >= 66, `${perMessage} bytes per message`);
});

test('draining gives chunk memory back as it goes', (t) => {
  const box = new PackedMailbox();
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
      const box = new PackedMailbox();
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
