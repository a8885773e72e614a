import { readFileSync } from 'node:fs';

/**
 * This process's soft limit on open file descriptors (`ulimit -n`), read from
 * /proc/self/limits on Linux; null where that cannot be read.
 */
export function descriptorLimit(limitsText?: string): number | null {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return null;
    }
  }
  const soft = /^Max open files\s+(\S+)/m.exec(text)?.[1];
  if (soft === 'unlimited') return UNLIMITED_DESCRIPTORS;
  if (soft === undefined || !/^\d+$/.test(soft)) return null;
  return Number(soft);
}

// Descriptors the server keeps for itself besides its connections: shard files and
// their WAL and -shm, the lock file, worker threads' pipes, stdio, the listening socket.
export const MIN_DESCRIPTOR_HEADROOM = 128;
// What an unlimited soft limit is taken to be: the kernel's usual nr_open.
export const UNLIMITED_DESCRIPTORS = 1_048_576;
// Where the limit cannot be read, it is taken to be this (a common default).
export const ASSUMED_DESCRIPTOR_LIMIT = 1024;

/** Connections that leave headroom under `limit` descriptors: a tenth of it, at least 128. */
export function connectionsFor(limit: number | null): number {
  const descriptors = limit ?? ASSUMED_DESCRIPTOR_LIMIT;
  return Math.max(1, descriptors - Math.max(MIN_DESCRIPTOR_HEADROOM, Math.ceil(descriptors / 10)));
}
