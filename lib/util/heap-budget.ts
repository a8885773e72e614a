import { getHeapStatistics } from 'node:v8';

// What one mailbox may keep on a shard's V8 heap, at most, beside its messages: its
// name, its map entry and objects (a memory store's chunk list; a SQLite store's count).
// Measured at 450-700 bytes with names of 16-256 bytes; the rest is margin.
export const MAILBOX_HEAP_BYTES = 1024;
// The share of the heap mailboxes may take: the rest is for batches, replies and garbage.
const HEAP_SHARE = 0.5;

/**
 * How many mailboxes a store on this thread may hold: past it, V8 would run out of
 * heap and the thread would die with every mailbox in it, long before a byte cap on the
 * messages is reached. Each thread has a heap of its own, so each shard asks in its own.
 */
export function mailboxesForHeap(heapLimitBytes: number = getHeapStatistics().heap_size_limit): number {
  return Math.max(1, Math.floor((heapLimitBytes * HEAP_SHARE) / MAILBOX_HEAP_BYTES));
}
