import { writeFile } from 'node:fs/promises';
import type { LatencySummary } from './load/generator.js';
import { formatMachine } from './machine.js';
import type { BenchReport, BenchRow } from './harness.js';

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

/** The row with one acceptor thread and otherwise the same configuration, for the 'vs 1 acc' ratio. */
function oneAcceptorRow(report: BenchReport, row: BenchRow): BenchRow | undefined {
  if (row.kind !== 'pigeonhole' || row.acceptors === undefined || row.acceptors === null || row.acceptors === 1) return undefined;
  const rest = row.label.replace(/^acceptors=\d+ /, '');
  return report.rows.find((other) => other.acceptors === 1 && other.label.replace(/^acceptors=\d+ /, '') === rest);
}

/** One Markdown table, rows side by side; pasteable into RESULTS.md as is. */
export function formatTable(report: BenchReport): string {
  const inline = report.rows.find((row) => row.kind === 'pigeonhole' && row.shards === 0)?.result?.opsPerSecond;
  const redis = report.rows.find((row) => row.kind === 'redis')?.result?.opsPerSecond;
  const cells = report.rows.map((row) => rowCells(row, inline, redis, oneAcceptorRow(report, row)?.result?.opsPerSecond));
  const widths = COLUMNS.map((title, i) => Math.max(title.length, ...cells.map((line) => (line[i] as string).length)));
  const line = (values: readonly string[]): string => `| ${values.map((value, i) => (i === 0 ? value.padEnd(widths[i] as number) : value.padStart(widths[i] as number))).join(' | ')} |`;
  const rule = `|${widths.map((width, i) => (i === 0 ? '-'.repeat(width + 2) : `${'-'.repeat(width + 1)}:`)).join('|')}|`;
  return [line(COLUMNS), rule, ...cells.map(line)].join('\n');
}

function rowCells(row: BenchRow, inline: number | undefined, redis: number | undefined, oneAcceptor: number | undefined): string[] {
  const r = row.result;
  const roles = r === null ? null : cpuByRole(r.serverThreadMicrosPerOp);
  if (r === null) return [row.label, 'did not run', ...COLUMNS.slice(2).map(() => '')];
  const l: LatencySummary = r.latency;
  const ratio = (base: number | undefined): string => (base === undefined || base === 0 ? '' : `${(r.opsPerSecond / base).toFixed(2)}x`);
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
    row.kind === 'pigeonhole' ? ratio(inline) : '',
    ratio(oneAcceptor),
    ratio(redis),
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
    if (r === null) {
      lines.push(`${row.label}: did not run: ${row.error ?? 'unknown error'}`);
      continue;
    }
    const c = r.check;
    const n = (value: number): string => value.toLocaleString('en-US');
    lines.push(
      `${row.label}: ${r.ok ? 'OK' : 'WRONG'}: composed ${n(c.sent + c.failed + c.unanswered)} (MESSAGE FAILED ${n(c.failed)}` +
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
  await writeFile(file, `${JSON.stringify({ format: 'pigeonhole-bench/1', ...report }, null, 2)}\n`);
}
