// The benchmark harness's own check: against a correct server it finds nothing wrong,
// and against a fast wrong one it reports errors. No timing assertions: figures vary.
import test from 'ava';
import { type FakeFlaw, startFakeServer } from '../../bench/fake-server.js';
import { type BenchRow, runBenchmark } from '../../bench/harness.js';
import { type LoadResult, runLoad } from '../../bench/load/generator.js';
import type { ErrorKind } from '../../bench/load/types.js';
import { type BenchOptions, DEFAULTS } from '../../bench/options.js';
import { formatChecks, formatResults, formatTable } from '../../bench/report.js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chartSpec, writeChart } from '../../bench/chart.js';
import { silentLogger } from '../../lib/logger.js';
import { createServer } from '../../lib/server.js';

// Small and short; two generator threads so a message composed on one thread and read
// on the other is matched up too.
function benchOptions(overrides: Partial<BenchOptions>): BenchOptions {
  return {
    ...DEFAULTS,
    connections: 8,
    pipeline: 4,
    durationSeconds: 1,
    warmupSeconds: 0.2,
    users: 40,
    shards: [],
    target: null,
    redis: false,
    json: null,
    threads: 2,
    cpuProfDir: null,
    durable: false,
    fsync: false,
    tls: false,
    store: 'local',
    transports: ['ring'],
    chart: null,
    acceptorsAsked: false,
    serverCpus: null,
    ...overrides,
  };
}

function assertClean(t: import('ava').ExecutionContext, row: BenchRow | undefined): LoadResult {
  const result = row?.result;
  if (result === null || result === undefined) return t.fail(`the row did not run: ${row?.error ?? 'no row'}`) as never;
  t.deepEqual(result.errors.samples, []);
  t.is(result.errors.total, 0);
  t.true(result.ok);
  t.true(result.ops > 0);
  t.true(result.window.composes > 0 && result.window.reads > 0);
  // READs under load found messages: the load is not only READ ERRORs.
  t.true(result.run.readHits > 0);
  // composed − failed = read, and every id was accounted for.
  t.is(result.check.sent, result.check.read);
  t.true(result.check.read > 0);
  t.is(result.check.lost + result.check.duplicates + result.check.unknown, 0);
  t.true(result.latency.count > 0 && result.latency.p50 > 0 && result.latency.max >= result.latency.p99);
  return result;
}

// Serial, so before the concurrent tests: this server runs on this process's main thread,
// which the chart test's rendering blocks for up to a second on a busy machine, long
// enough to leave a half-second window with no replies at all.
for (const shards of [0, 2]) {
  test.serial(`a correct pigeonhole server (shards ${shards}) passes every check`, async (t) => {
    const server = createServer({ shards, logger: silentLogger });
    t.teardown(() => server.close());
    const { port } = await server.listen({ port: 0, host: '127.0.0.1' });
    // About a second against inline mode; the worker-shard run is shorter.
    const report = await runBenchmark(benchOptions({ target: { host: '127.0.0.1', port }, ...(shards === 0 ? {} : { durationSeconds: 0.5, warmupSeconds: 0.1 }) }));
    t.is(report.rows.length, 1);
    assertClean(t, report.rows[0]);
    t.regex(formatTable(report), /target 127\.0\.0\.1/);
    t.regex(formatChecks(report), /OK: composed/);
  });
}

test('each configuration runs as its own server process, measured from outside', async (t) => {
  const report = await runBenchmark(benchOptions({ shards: [0], durationSeconds: 0.5, warmupSeconds: 0 }));
  const row = report.rows[0];
  assertClean(t, row);
  t.is(row?.label, 'shards=0');
  t.true((row?.serverPeakRss ?? 0) > 0);
  t.not(row?.result?.serverCpuPercent, null);
});

test('--acceptors 2: the row is labelled, and the server CPU per command is told by thread', async (t) => {
  const report = await runBenchmark(benchOptions({ shards: [0, 1], acceptors: [2], acceptorsAsked: true, durationSeconds: 0.5, warmupSeconds: 0.1 }));
  t.deepEqual(report.rows.map((row) => row.label), ['acceptors=2 shards=1'], 'no row for inline shards with two acceptors');
  const result = assertClean(t, report.rows[0]);
  if (process.platform !== 'linux') return;
  const threads = result.serverThreadMicrosPerOp ?? {};
  t.deepEqual(Object.keys(threads).sort(), ['acceptor 0', 'acceptor 1', 'other', 'shard 0']);
  for (const name of ['acceptor 0', 'acceptor 1', 'shard 0']) t.true((threads[name] ?? 0) > 0, `${name} worked`);
  t.regex(formatChecks(report), /server CPU per command by thread \(µs\): acceptor 0 [\d.]+, acceptor 1 [\d.]+, shard 0 [\d.]+, other [\d.]+/);
});

test('--tls: the server process serves TLS and every generator and drain connection speaks it', async (t) => {
  const report = await runBenchmark(benchOptions({ shards: [0], durationSeconds: 0.3, warmupSeconds: 0, tls: true }));
  const row = report.rows[0];
  assertClean(t, row);
  t.is(row?.label, 'shards=0 tls');
});

// Serial: the server is on this process's main thread (see above).
test.serial('--rounds 2: each configuration runs once per round, and the report ends with its medians', async (t) => {
  const server = createServer({ shards: 0, logger: silentLogger });
  t.teardown(() => server.close());
  const { port } = await server.listen({ port: 0, host: '127.0.0.1' });
  const report = await runBenchmark(benchOptions({ target: { host: '127.0.0.1', port }, durationSeconds: 0.3, warmupSeconds: 0, rounds: 2 }));
  t.deepEqual(report.rows.map((row) => row.round), [1, 2]);
  for (const row of report.rows) assertClean(t, row);
  const text = formatResults(report);
  t.regex(text, /^round 1 of 2:\n\n\| config /);
  t.regex(text, /\nround 2 of 2:\n\n\| config /);
  // The summary's row for the one configuration: both rounds, the median ops/s, the range.
  const summary = text.slice(text.indexOf('over the 2 rounds')).split('\n').find((line) => line.startsWith('| target'));
  const cells = summary?.split('|').map((cell) => cell.trim()) ?? [];
  const [low, high] = report.rows.map((row) => row.result?.opsPerSecond ?? 0).sort((a, b) => a - b) as [number, number];
  const ops = (n: number): string => Math.round(n).toLocaleString('en-US');
  t.is(cells[2], '2');
  t.is(cells[3], `${ops((low + high) / 2)} [${ops(low)}–${ops(high)}]`);
  t.regex(formatChecks(report), /round 2, target 127\.0\.0\.1:\d+: OK: composed/);
});

// Serial as well: its rendering blocks this process's main thread, where the fake servers
// below run, for up to a second on a busy machine.
test.serial('--chart draws the run: a bar per configuration and its latency curve, as SVG', async (t) => {
  const server = createServer({ shards: 0, logger: silentLogger });
  t.teardown(() => server.close());
  const { port } = await server.listen({ port: 0, host: '127.0.0.1' });
  const report = await runBenchmark(benchOptions({ target: { host: '127.0.0.1', port }, durationSeconds: 0.3, warmupSeconds: 0 }));
  const dir = mkdtempSync(join(tmpdir(), 'pigeonhole-chart-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'run.svg');
  await writeChart(file, report);
  const svg = readFileSync(file, 'utf8');
  t.regex(svg, /^<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  t.regex(svg, /target 127\.0\.0\.1/, 'the configuration is named');
  t.regex(svg, /commands\/s/);
  t.regex(svg, /p99\.9/, 'the latency axis reaches p99.9');
  // Two views: throughput, and the percentiles of the one configuration.
  const spec = chartSpec(report) as { hconcat: { data: { values: unknown[] } }[] };
  t.is(spec.hconcat.length, 2);
  t.is(spec.hconcat[0]?.data.values.length, 1);
  t.is(spec.hconcat[1]?.data.values.length, 7);
});

async function againstFake(dialect: 'pigeonhole' | 'redis', flaw: FakeFlaw, drainTimeoutMs = 10_000): Promise<LoadResult> {
  const fake = await startFakeServer({ dialect, flaw });
  try {
    return await runLoad({
      dialect,
      host: '127.0.0.1',
      port: fake.port,
      connections: 6,
      pipeline: 4,
      users: 20,
      composeShare: 0.5,
      toReaders: 0.75,
      messageBytes: 64,
      prefix: `smoke-${flaw}-`,
      threads: 1,
      warmupMs: 0,
      durationMs: 200,
      stopGraceMs: 2_000,
      drainTimeoutMs,
    });
  } finally {
    await fake.close();
  }
}

// The fakes themselves are sound, so what the flawed ones trip on is their flaw.
for (const dialect of ['pigeonhole', 'redis'] as const) {
  test(`a correct fake ${dialect} server passes (the control)`, async (t) => {
    const result = await againstFake(dialect, 'none');
    t.deepEqual(result.errors.samples, []);
    t.true(result.ok);
    t.is(result.check.sent, result.check.read);
    t.true(result.check.read > 0);
  });
}

const flaws: [FakeFlaw, ErrorKind, 'pigeonhole' | 'redis'][] = [
  ['forget', 'lost', 'pigeonhole'],
  ['forget', 'lost', 'redis'],
  ['corrupt', 'unknownId', 'pigeonhole'],
  ['duplicate', 'duplicate', 'pigeonhole'],
  ['misroute', 'wrongRecipient', 'pigeonhole'],
  ['garbage', 'wrongReply', 'pigeonhole'],
];

for (const [flaw, kind, dialect] of flaws) {
  test(`a ${dialect} server that is wrong (${flaw}) is reported: ${kind}`, async (t) => {
    const result = await againstFake(dialect, flaw);
    t.false(result.ok);
    t.true(result.errors.total > 0);
    t.true(result.errors.counts[kind] > 0, `${kind} in ${JSON.stringify(result.errors.counts)}`);
  });
}

// A server that stops answering altogether (as one whose shard slept through its wake-up
// once did) must end the run with errors, not hold it: the drain stops at its deadline
// even while a reply it waits for never comes.
test('a pigeonhole server that stops answering is reported, and the drain ends at its deadline', async (t) => {
  const started = performance.now();
  const result = await againstFake('pigeonhole', 'hang', 1_500);
  t.false(result.ok);
  t.true((result.errors.counts.missingReply ?? 0) > 0);
  t.true(result.errors.samples.some((sample) => /drain deadline/.test(sample)), 'the drain says it gave up at its deadline');
  t.true(performance.now() - started < 30_000, 'the run ended by itself');
});
