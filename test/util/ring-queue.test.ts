import test from 'ava';
import fc from 'fast-check';
import { RingQueue } from '../../lib/util/ring-queue.js';

function fill(queue: RingQueue<number>, from: number, to: number): void {
  for (let i = from; i < to; i++) queue.push(i);
}

function shiftAll(queue: RingQueue<number>): number[] {
  const out: number[] = [];
  for (let item = queue.shift(); item !== undefined; item = queue.shift()) out.push(item);
  return out;
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

test('an empty queue', (t) => {
  const queue = new RingQueue<number>();
  t.is(queue.size, 0);
  t.is(queue.shift(), undefined);
  t.is(queue.peek(), undefined);
  t.deepEqual([...queue], []);
});

test('FIFO order', (t) => {
  const queue = new RingQueue<string>();
  queue.push('a');
  queue.push('b');
  queue.push('c');
  t.is(queue.size, 3);
  t.is(queue.peek(), 'a');
  t.deepEqual([...queue], ['a', 'b', 'c']);
  t.is(queue.shift(), 'a');
  t.is(queue.shift(), 'b');
  t.is(queue.peek(), 'c');
  t.is(queue.shift(), 'c');
  t.is(queue.shift(), undefined);
  t.is(queue.size, 0);
});

test('peek and iteration do not remove', (t) => {
  const queue = new RingQueue<number>();
  fill(queue, 0, 5);
  t.is(queue.peek(), 0);
  t.deepEqual([...queue], [0, 1, 2, 3, 4]);
  t.is(queue.size, 5);
  t.deepEqual(shiftAll(queue), [0, 1, 2, 3, 4]);
});

test('set() replaces the item at a place, also once the ring has wrapped, and only where there is one', (t) => {
  const queue = new RingQueue<number>(4);
  for (const n of [1, 2, 3]) queue.push(n);
  queue.shift();
  queue.shift();
  queue.push(4);
  queue.push(5);
  // Wrapped: [3, 4, 5] from the ring's third slot.
  queue.set(queue.size - 1, 50);
  queue.set(0, 30);
  t.deepEqual([...queue], [30, 4, 50]);
  t.throws(() => queue.set(3, 6), { instanceOf: RangeError });
  t.throws(() => queue.set(-1, 6), { instanceOf: RangeError });
  t.deepEqual([...queue], [30, 4, 50]);
});

test('grows past many capacities and keeps the order', (t) => {
  const queue = new RingQueue<number>();
  fill(queue, 0, 10_000);
  t.is(queue.size, 10_000);
  t.deepEqual([...queue], range(0, 10_000));
  t.deepEqual(shiftAll(queue), range(0, 10_000));
});

test('grows while the ring has wrapped around', (t) => {
  const queue = new RingQueue<number>();
  // Move the head off slot 0 so the next growth has to unwrap the ring.
  fill(queue, 0, 3);
  t.is(queue.shift(), 0);
  t.is(queue.shift(), 1);
  fill(queue, 3, 1_000);
  t.deepEqual([...queue], range(2, 1_000));
  t.deepEqual(shiftAll(queue), range(2, 1_000));
});

test('shrinks after draining and still works at every size on the way down and back up', (t) => {
  const queue = new RingQueue<number>();
  fill(queue, 0, 4_096);
  for (let expected = 0; expected < 4_090; expected++) t.is(queue.shift(), expected);
  t.is(queue.size, 6);
  t.deepEqual([...queue], range(4_090, 4_096));
  fill(queue, 4_096, 5_000);
  t.deepEqual(shiftAll(queue), range(4_090, 5_000));
  fill(queue, 0, 3);
  t.deepEqual(shiftAll(queue), [0, 1, 2]);
});

test('shift releases the item (no reference kept in the ring)', (t) => {
  // The observable part: what comes back after a wrap is never a stale item.
  const queue = new RingQueue<{ n: number }>();
  for (let round = 0; round < 50; round++) {
    queue.push({ n: round });
    t.is(queue.shift()?.n, round);
    t.is(queue.shift(), undefined);
  }
});

test('holds undefined-free values of any kind, including falsy ones', (t) => {
  const queue = new RingQueue<number | string | null | boolean>();
  for (const value of [0, '', null, false]) queue.push(value);
  t.is(queue.size, 4);
  t.deepEqual([...queue], [0, '', null, false]);
  t.is(queue.shift(), 0);
  t.is(queue.shift(), '');
  t.is(queue.shift(), null);
  t.is(queue.shift(), false);
});

type Op = { op: 'push'; count: number } | { op: 'shift'; count: number } | { op: 'peek' };

const ops = fc.array(
  fc.oneof(
    { weight: 4, arbitrary: fc.record({ op: fc.constant('push' as const), count: fc.integer({ min: 1, max: 70 }) }) },
    { weight: 4, arbitrary: fc.record({ op: fc.constant('shift' as const), count: fc.integer({ min: 1, max: 90 }) }) },
    { weight: 1, arbitrary: fc.constant({ op: 'peek' as const }) },
  ),
  { maxLength: 60 },
);

test('property: interleaved push/shift behave like an array', (t) => {
  fc.assert(
    fc.property(ops, (script: Op[]) => {
      const queue = new RingQueue<number>();
      const model: number[] = [];
      let next = 0;
      for (const step of script) {
        if (step.op === 'push') {
          for (let i = 0; i < step.count; i++) {
            queue.push(next);
            model.push(next++);
          }
        } else if (step.op === 'shift') {
          // Shifting past empty is part of the script: both must say undefined.
          for (let i = 0; i < step.count; i++) if (queue.shift() !== model.shift()) return false;
        } else if (queue.peek() !== model[0]) {
          return false;
        }
        if (queue.size !== model.length) return false;
        const items = [...queue];
        if (items.length !== model.length || items.some((item, i) => item !== model[i])) return false;
      }
      return true;
    }),
    { numRuns: 300 },
  );
  t.pass();
});
