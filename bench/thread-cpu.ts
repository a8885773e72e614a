import { readFileSync } from 'node:fs';
import { procCpuMicros } from './proc.js';

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
