// The figures of a run of several rounds: medians and ranges, and ratios taken within a round.
import test from 'ava';
import type { BenchReport, BenchRow } from '../../bench/harness.js';
import type { LoadResult } from '../../bench/load/generator.js';
import { DEFAULTS, parseBenchArgs } from '../../bench/options.js';
import { spread, summarise } from '../../bench/summary.js';
import { UsageError } from '../../lib/cli/flags.js';

// Only what the summary reads of a result.
function result(ops: number, p99Ms: number, micros: number, ok = true): LoadResult {
  return { ops: ops * 5, opsPerSecond: ops, latency: { p99: p99Ms * 1e6 }, serverCpuMicrosPerOp: micros, ok } as unknown as LoadResult;
}

function row(round: number, label: string, kind: BenchRow['kind'], shards: number | null, value: LoadResult | null, acceptors?: number): BenchRow {
  return { label, kind, shards, round, result: value, error: value === null ? 'did not start' : null, serverPeakRss: null, serverStartRss: null, ...(acceptors === undefined ? {} : { acceptors }) };
}

function report(rows: BenchRow[], rounds: number): BenchReport {
  return { options: { ...DEFAULTS, rounds }, rows } as unknown as BenchReport;
}

test('a spread is the median (of an even count, the mean of the middle two) with the lowest and highest', (t) => {
  t.deepEqual(spread([3, 1, 2]), { median: 2, min: 1, max: 3, count: 3 });
  t.deepEqual(spread([10, 40, 20, 30]), { median: 25, min: 10, max: 40, count: 4 });
  t.is(spread([]), null);
});

test('ratios are taken within each round, then their median: a slow round moves both sides', (t) => {
  // Round 2 ran on a slower machine: both servers at half speed. Within each round,
  // pigeonhole does 0.8x, 0.8x and 0.9x Redis; a ratio of the medians would say 1.0x.
  const rows = [
    row(1, 'shards=0', 'pigeonhole', 0, result(80_000, 1.0, 12)),
    row(1, 'redis 7', 'redis', null, result(100_000, 0.8, 9)),
    row(2, 'shards=0', 'pigeonhole', 0, result(40_000, 2.0, 14)),
    row(2, 'redis 7', 'redis', null, result(50_000, 1.6, 11)),
    row(3, 'shards=0', 'pigeonhole', 0, result(90_000, 0.9, 11)),
    row(3, 'redis 7', 'redis', null, result(100_000, 0.7, 10)),
  ];
  const [inline, redis] = summarise(report(rows, 3));
  t.is(inline?.label, 'shards=0');
  t.is(inline?.rounds, 3);
  t.true(inline?.ok);
  t.deepEqual(inline?.opsPerSecond, { median: 80_000, min: 40_000, max: 90_000, count: 3 });
  t.is(inline?.p99?.median, 1e6);
  t.deepEqual(inline?.serverCpuMicrosPerOp, { median: 12, min: 11, max: 14, count: 3 });
  t.is(inline?.vsRedis?.median, 0.8);
  t.is(inline?.vsRedis?.min, 0.8);
  t.is(inline?.vsRedis?.max, 0.9);
  t.is(inline?.vsInline?.median, 1);
  // p99 over Redis's: 1.25x, 1.25x and 0.9 / 0.7 = 1.29x.
  t.is(inline?.p99VsRedis?.median, 1.25);
  t.is(inline?.p99VsRedis?.max, 0.9 / 0.7);
  t.is(redis?.vsRedis?.median, 1);
  t.is(redis?.vsInline, null, 'Redis is not compared with inline');
});

test('two acceptors are compared with one in the same round; a round that failed to start is left out and the row is not ok', (t) => {
  const rows = [
    row(1, 'acceptors=1 shards=1', 'pigeonhole', 1, result(60_000, 1.6, 14), 1),
    row(1, 'acceptors=2 shards=1', 'pigeonhole', 1, result(54_000, 2.0, 20), 2),
    row(2, 'acceptors=1 shards=1', 'pigeonhole', 1, result(50_000, 1.8, 15), 1),
    row(2, 'acceptors=2 shards=1', 'pigeonhole', 1, null, 2),
  ];
  const [one, two] = summarise(report(rows, 2));
  t.is(one?.vsOneAcceptor, null, 'one acceptor is the base, not compared');
  t.is(one?.vsInline, null, 'no inline row ran');
  t.true(one?.ok);
  t.is(two?.rounds, 1);
  t.false(two?.ok);
  t.deepEqual(two?.vsOneAcceptor, { median: 0.9, min: 0.9, max: 0.9, count: 1 });
});

test('a round with a wrong reply makes its configuration not ok; one that answered nothing is left out of its figures', (t) => {
  const rows = [
    row(1, 'shards=0', 'pigeonhole', 0, result(80_000, 1, 12)),
    row(2, 'shards=0', 'pigeonhole', 0, result(81_000, 1, 12, false)),
    row(3, 'shards=0', 'pigeonhole', 0, result(0, 0, 0, false)),
  ];
  const [summary] = summarise(report(rows, 3));
  t.false(summary?.ok);
  t.is(summary?.rounds, 2);
  t.deepEqual(summary?.opsPerSecond, { median: 80_500, min: 80_000, max: 81_000, count: 2 });
  t.is(summary?.p99?.min, 1e6, 'no p99 of 0 from the silent round');
});

test('--rounds takes a whole number from 1 to 50, and is 1 unless given', (t) => {
  t.is((parseBenchArgs([]) as { rounds: number }).rounds, 1);
  t.is((parseBenchArgs(['--rounds', '5']) as { rounds: number }).rounds, 5);
  for (const bad of ['0', '51', '2.5', 'x']) t.throws(() => parseBenchArgs(['--rounds', bad]), { instanceOf: UsageError, message: /--rounds must/ });
});
