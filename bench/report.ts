import { writeFile } from 'node:fs/promises';
import type { LatencySummary } from './load/generator.js';
import { formatMachine } from './machine.js';
import type { BenchReport, BenchRow } from './harness.js';
import { type Baselines, type Spread, baselines, opsRatio, roundRows, summarise } from './summary.js';

const MIB = 1024 * 1024;

/** The run's configuration, machine and code version: what a reader needs to compare runs. */
export function formatHeader(report: BenchReport, commandLine?: string): string {
  const { options: o, machine: m, git } = report;
  const lines = [
    `pigeonhole bench, ${report.date}`,
    `machine: ${formatMachine(m)}`,
    `code: ${git.branch ?? '?'} @ ${git.commit ?? '?'}${git.dirty === true ? ' (uncommitted changes)' : ''}`,
    `load: ${o.connections} connections, pipeline ${o.pipeline}, mix ${o.mix.compose}:${o.mix.read} COMPOSE:READ, ${o.messageBytes}-byte messages, ` +
      `${o.users} users + ${o.connections} readers (${Math.round(o.toReaders * 100)}% of COMPOSEs to readers), ` +
      `warm-up ${o.warmupSeconds} s, measured ${o.durationSeconds} s, ${o.threads} generator thread(s)`,
  ];
  if (report.redisVersion !== null) lines.push(`redis: ${report.redisVersion} (inline RPUSH/LPOP, no persistence)`);
  if (o.store !== 'local') {
    lines.push(
      `store: pigeonhole mailboxes in ${o.store === 'redis' ? 'one redis-server' : 'a 3-master Redis Cluster'} started per row (no persistence); ` +
        `srv CPU and RSS are the pigeonhole nodes' only, Redis's own CPU is not counted`,
    );
  }
  if (commandLine !== undefined) lines.push(`command: ${commandLine}`);
  return lines.join('\n');
}

/** The header in one line, for a chart's subtitle. */
export function formatHeaderLine(report: BenchReport): string {
  const { options: o, machine: m } = report;
  return `${o.connections} connections, pipeline ${o.pipeline}, ${o.messageBytes}-byte messages, ${o.durationSeconds} s; ${m.cpuModel}, ${m.cores} cores, Node ${m.node}; ${report.date.slice(0, 16)}`;
}

const COLUMNS = ['config', 'ops/s', 'p50 ms', 'p90 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'errors', 'failed', 'READ hit', 'srv peak RSS', 'srv CPU', 'srv µs/op', 'acc µs/op', 'shard µs/op', 'gen CPU', 'vs inline', 'vs 1 acc', 'vs Redis'] as const;

/** The server's CPU per command by role: the acceptor threads summed, the shard threads summed. */
export function cpuByRole(perThread: Record<string, number> | null): { acceptors: number; shards: number; other: number } | null {
  if (perThread === null) return null;
  const sum = (prefix: string): number => Object.entries(perThread).reduce((total, [name, micros]) => (name.startsWith(prefix) ? total + micros : total), 0);
  return { acceptors: sum('acceptor '), shards: sum('shard '), other: perThread.other ?? 0 };
}

/** One Markdown table, rows side by side; pasteable into RESULTS.md as is. `rows`: one round's (all of them by default). */
export function formatTable(report: BenchReport, rows: readonly BenchRow[] = report.rows): string {
  return markdownTable(COLUMNS, rows.map((row) => rowCells(row, baselines(rows, row))));
}

/** The tables of a run: one when it had one round; else one per round, then every row's median and range. */
export function formatResults(report: BenchReport): string {
  const { rounds } = report.options;
  if (rounds === 1) return formatTable(report);
  const tables: string[] = [];
  for (let round = 1; round <= rounds; round++) tables.push(`round ${round} of ${rounds}:\n\n${formatTable(report, roundRows(report, round))}`);
  tables.push(`over the ${rounds} rounds, the median [lowest–highest]; each ratio is taken within a round:\n\n${formatSummary(report)}`);
  return tables.join('\n\n');
}

const SUMMARY_COLUMNS = ['config', 'rounds', 'ops/s', 'p99 ms', 'srv µs/op', 'vs inline', 'vs 1 acc', 'vs Redis', 'p99 vs Redis'] as const;

/** Every configuration's median and range over the rounds, as one Markdown table. */
export function formatSummary(report: BenchReport): string {
  const figure = (value: Spread | null, format: (n: number) => string): string => (value === null ? '' : value.min === value.max ? format(value.median) : `${format(value.median)} [${format(value.min)}–${format(value.max)}]`);
  const ops = (n: number): string => Math.round(n).toLocaleString('en-US');
  const ratio = (n: number): string => `${n.toFixed(2)}x`;
  const lines = summarise(report).map((row) => [
    row.ok ? row.label : `${row.label} (WRONG)`,
    `${row.rounds}`,
    figure(row.opsPerSecond, ops),
    figure(row.p99, ms),
    figure(row.serverCpuMicrosPerOp, (n) => n.toFixed(1)),
    figure(row.vsInline, ratio),
    figure(row.vsOneAcceptor, ratio),
    figure(row.vsRedis, ratio),
    figure(row.p99VsRedis, ratio),
  ]);
  return markdownTable(SUMMARY_COLUMNS, lines);
}

function markdownTable(columns: readonly string[], cells: readonly (readonly string[])[]): string {
  const widths = columns.map((title, i) => Math.max(title.length, ...cells.map((line) => (line[i] as string).length)));
  const line = (values: readonly string[]): string => `| ${values.map((value, i) => (i === 0 ? value.padEnd(widths[i] as number) : value.padStart(widths[i] as number))).join(' | ')} |`;
  const rule = `|${widths.map((width, i) => (i === 0 ? '-'.repeat(width + 2) : `${'-'.repeat(width + 1)}:`)).join('|')}|`;
  return [line(columns), rule, ...cells.map(line)].join('\n');
}

function rowCells(row: BenchRow, base: Baselines): string[] {
  const r = row.result;
  const roles = r === null ? null : cpuByRole(r.serverThreadMicrosPerOp);
  if (r === null) return [row.label, 'did not run', ...COLUMNS.slice(2).map(() => '')];
  const l: LatencySummary = r.latency;
  const ratio = (other: BenchRow | undefined): string => {
    const value = opsRatio(row, other);
    return value === null ? '' : `${value.toFixed(2)}x`;
  };
  return [
    r.ok ? row.label : `${row.label} (WRONG)`,
    Math.round(r.opsPerSecond).toLocaleString('en-US'),
    ms(l.p50),
    ms(l.p90),
    ms(l.p99),
    ms(l.p999),
    ms(l.max),
    r.errors.total.toLocaleString('en-US'),
    r.window.failed.toLocaleString('en-US'),
    r.window.reads === 0 ? '' : `${Math.round((r.window.readHits / r.window.reads) * 100)}%`,
    row.serverPeakRss === null ? 'n/a' : `${Math.round(row.serverPeakRss / MIB)} MiB`,
    r.serverCpuPercent === null ? 'n/a' : `${Math.round(r.serverCpuPercent)}%`,
    r.serverCpuMicrosPerOp === null ? 'n/a' : r.serverCpuMicrosPerOp.toFixed(1),
    roles === null ? '' : roles.acceptors.toFixed(1),
    roles === null || roles.shards === 0 ? '' : roles.shards.toFixed(1),
    `${Math.round(r.generatorCpuPercent)}%`,
    ratio(base.inline),
    ratio(base.oneAcceptor),
    ratio(base.redis),
  ];
}

function ms(ns: number): string {
  const value = ns / 1e6;
  return value < 1 ? value.toFixed(3) : value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : value.toFixed(0);
}

/** Per row: what the verification found, and the first errors when there are any. */
export function formatChecks(report: BenchReport): string {
  const lines: string[] = [];
  for (const row of report.rows) {
    const r = row.result;
    const label = report.options.rounds > 1 ? `round ${row.round}, ${row.label}` : row.label;
    if (r === null) {
      lines.push(`${label}: did not run: ${row.error ?? 'unknown error'}`);
      continue;
    }
    const c = r.check;
    const n = (value: number): string => value.toLocaleString('en-US');
    lines.push(
      `${label}: ${r.ok ? 'OK' : 'WRONG'}: composed ${n(c.sent + c.failed + c.unanswered)} (MESSAGE FAILED ${n(c.failed)}` +
        `${c.unanswered > 0 ? `, unanswered ${n(c.unanswered)}` : ''}), read ${n(c.read)} (${n(r.run.readHits)} by READs under load, ` +
        `${n(r.drain.messages)} drained from ${n(r.drain.users)} mailboxes in ${r.drain.seconds.toFixed(1)} s); ` +
        `composed - failed ${c.sent + c.unanswered === c.read ? '=' : '!='} read; lost ${n(c.lost)}, duplicates ${n(c.duplicates)}, unknown ${n(c.unknown)}`,
    );
    const perOp = (micros: number | null): string => (micros === null ? 'n/a' : `${micros.toFixed(1)} µs`);
    lines.push(
      `  window ${r.windowSeconds.toFixed(2)} s: ${n(r.window.composes)} COMPOSE + ${n(r.window.reads)} READ replies; ` +
        `CPU per command: server ${perOp(r.serverCpuMicrosPerOp)}, generator ${perOp(r.generatorCpuMicrosPerOp)}; mean latency ${ms(r.latency.mean)} ms` +
        (row.serverStartRss === null ? '' : `; server RSS ${Math.round(row.serverStartRss / MIB)} MiB at start`),
    );
    if (r.serverThreadMicrosPerOp !== null) {
      const threads = Object.entries(r.serverThreadMicrosPerOp).map(([name, micros]) => `${name} ${micros.toFixed(2)}`);
      lines.push(`  server CPU per command by thread (µs): ${threads.join(', ')}`);
    }
    if (r.run.abandoned > 0) lines.push(`  abandoned: ${n(r.run.abandoned)} command(s) left outstanding on connections dropped after a wrong reply`);
    if (r.errors.total > 0) {
      const kinds = Object.entries(r.errors.counts)
        .filter(([, count]) => count > 0)
        .map(([kind, count]) => `${kind} ${n(count)}`);
      lines.push(`  errors: ${kinds.join(', ')}`);
      for (const sample of r.errors.samples) lines.push(`  - ${sample}`);
    }
  }
  for (const note of report.notes) lines.push(`note: ${note}`);
  return lines.join('\n');
}

/** Everything, for comparing runs: machine, code version, options and every figure. */
export async function writeJson(file: string, report: BenchReport): Promise<void> {
  const summary = report.options.rounds > 1 ? { summary: summarise(report) } : {};
  await writeFile(file, `${JSON.stringify({ format: 'pigeonhole-bench/1', ...report, ...summary }, null, 2)}\n`);
}
