// A process's (or thread's) CPU time and resident set, read from Linux's /proc: the
// figures every benchmark reports for the servers it drives, and the server's per-thread
// breakdown.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let clockTicks: number | null = null;

function ticksPerSecond(): number {
  if (clockTicks === null) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5_000 }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** utime + stime of a process (or of a thread: 'self/task/TID'), from /proc/<pid>/stat; null when there is no /proc. */
export function procCpuMicros(pid: number | string): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces: count fields after its closing ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? (ticks / ticksPerSecond()) * 1e6 : null;
  } catch {
    return null;
  }
}

/** Resident set of a process now (VmRSS) or at its peak (VmHWM), in bytes; null when there is no /proc. */
export function procRss(pid: number, field: 'VmRSS' | 'VmHWM'): number | null {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match === null ? null : Number(match[1]) * 1024;
  } catch {
    return null;
  }
}

/** A thread of the server process by role ('acceptor 0', 'shard 1') and its OS thread id. */
export interface NamedThread {
  readonly name: string;
  readonly tid: number | null;
}

/**
 * CPU time (user + system) each named thread of this process has used, in microseconds,
 * read from /proc/self/task/TID: schedstat's nanoseconds on CPU where the kernel keeps
 * them, else stat's clock ticks. Linux only; an empty object elsewhere. The thread ids
 * come from the server itself (server.acceptors(), server.shards()): a thread learns its
 * own by reading /proc/thread-self.
 */
export function threadCpuMicros(threads: readonly NamedThread[]): Record<string, number> {
  const out: Record<string, number> = {};
  if (process.platform !== 'linux') return out;
  for (const { name, tid } of threads) {
    if (tid === null) continue;
    const micros = readSchedstat(tid) ?? procCpuMicros(`self/task/${tid}`);
    if (micros !== null) out[name] = micros;
  }
  return out;
}

function readSchedstat(tid: number): number | null {
  try {
    const ns = Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    // A kernel without schedstats reports 0 for every thread.
    return Number.isFinite(ns) && ns > 0 ? ns / 1000 : null;
  } catch {
    return null;
  }
}
