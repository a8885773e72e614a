// What a run of several rounds says about each configuration: the median and range of its
// figures over the rounds, and of its ratios to the rows it is compared with, each ratio
// taken within one round so that a machine that is slower in one round than in another
// moves both sides of it.
import type { BenchReport, BenchRow } from './harness.js';

/** The median of some figures, with the lowest and highest. */
export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly count: number;
}

/** One configuration over the rounds it ran in. */
export interface RowSummary {
  readonly label: string;
  readonly kind: BenchRow['kind'];
  /** Rounds in which it ran and answered; fewer than the run's rounds when it failed to start or answered nothing in some. */
  readonly rounds: number;
  /** True when every round it ran in found nothing wrong, and it ran in every round. */
  readonly ok: boolean;
  readonly opsPerSecond: Spread | null;
  /** p99 latency, in ns. */
  readonly p99: Spread | null;
  readonly serverCpuMicrosPerOp: Spread | null;
  /** Ops/s over the inline row's, the one-acceptor row's and Redis's, each within a round. */
  readonly vsInline: Spread | null;
  readonly vsOneAcceptor: Spread | null;
  readonly vsRedis: Spread | null;
  /** p99 latency over the Redis row's, within a round. */
  readonly p99VsRedis: Spread | null;
}

/** The spread of `values`; null when there are none. The median of an even count is the mean of the middle two. */
export function spread(values: readonly number[]): Spread | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
  return { median, min: sorted[0] as number, max: sorted.at(-1) as number, count: sorted.length };
}

/** The rows a row is compared with, found among the rows of its own round. */
export interface Baselines {
  readonly inline: BenchRow | undefined;
  readonly oneAcceptor: BenchRow | undefined;
  readonly redis: BenchRow | undefined;
}

const ACCEPTORS_PREFIX = /^acceptors=\d+ /;

/** In `rows` (one round's), the inline row, the row that differs from `row` only by one acceptor, and the Redis row. */
export function baselines(rows: readonly BenchRow[], row: BenchRow): Baselines {
  const oneAcceptor =
    row.kind !== 'pigeonhole' || row.acceptors === undefined || row.acceptors === null || row.acceptors === 1
      ? undefined
      : rows.find((other) => other.acceptors === 1 && other.label.replace(ACCEPTORS_PREFIX, '') === row.label.replace(ACCEPTORS_PREFIX, ''));
  return {
    inline: row.kind === 'pigeonhole' ? rows.find((other) => other.kind === 'pigeonhole' && other.shards === 0) : undefined,
    oneAcceptor,
    redis: rows.find((other) => other.kind === 'redis'),
  };
}

/** `row`'s ops/s over `base`'s; null when either did not run or `base` did nothing. */
export function opsRatio(row: BenchRow, base: BenchRow | undefined): number | null {
  const ops = row.result?.opsPerSecond;
  const baseOps = base?.result?.opsPerSecond;
  if (ops === undefined || baseOps === undefined || baseOps === 0) return null;
  return ops / baseOps;
}

/** `row`'s p99 latency over `base`'s; null when either did not run. */
export function p99Ratio(row: BenchRow, base: BenchRow | undefined): number | null {
  const p99 = row.result?.latency.p99;
  const baseP99 = base?.result?.latency.p99;
  if (p99 === undefined || baseP99 === undefined || baseP99 === 0) return null;
  return p99 / baseP99;
}

/** The report's rows of one round, in the order they ran. */
export function roundRows(report: BenchReport, round: number): BenchRow[] {
  return report.rows.filter((row) => row.round === round);
}

/** The report's rows grouped by configuration (label), in the order each first ran. */
export function byConfiguration(report: BenchReport): Map<string, BenchRow[]> {
  const groups = new Map<string, BenchRow[]>();
  for (const row of report.rows) {
    const group = groups.get(row.label);
    if (group === undefined) groups.set(row.label, [row]);
    else group.push(row);
  }
  return groups;
}

/** Every configuration's figures over the rounds. */
export function summarise(report: BenchReport): RowSummary[] {
  const summaries: RowSummary[] = [];
  for (const [label, rows] of byConfiguration(report)) {
    // A round that started no server, or whose server answered nothing in the window
    // (one that stopped answering), says nothing about speed: it only makes the row WRONG.
    const ran = rows.filter((row) => row.result !== null && row.result.ops > 0);
    const figures = (pick: (row: BenchRow) => number | null | undefined): Spread | null =>
      spread(ran.map(pick).filter((value): value is number => value !== null && value !== undefined));
    const ratios = (base: keyof Baselines, ratio = opsRatio): Spread | null =>
      figures((row) => ratio(row, baselines(roundRows(report, row.round), row)[base]));
    summaries.push({
      label,
      kind: (rows[0] as BenchRow).kind,
      rounds: ran.length,
      ok: ran.length === report.options.rounds && ran.every((row) => row.result?.ok === true),
      opsPerSecond: figures((row) => row.result?.opsPerSecond),
      p99: figures((row) => row.result?.latency.p99),
      serverCpuMicrosPerOp: figures((row) => row.result?.serverCpuMicrosPerOp),
      vsInline: ratios('inline'),
      vsOneAcceptor: ratios('oneAcceptor'),
      vsRedis: ratios('redis'),
      p99VsRedis: ratios('redis', p99Ratio),
    });
  }
  return summaries;
}
