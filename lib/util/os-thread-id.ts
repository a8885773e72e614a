import { readlinkSync } from 'node:fs';

/**
 * The operating system's id of the calling thread, as `top -H`, `ps -L` and
 * /proc/PID/task/TID show it; null where it cannot be told (not Linux). On Linux
 * /proc/thread-self names the thread that reads it, so the read must be synchronous:
 * an asynchronous one would run on a thread of libuv's pool.
 */
export function osThreadId(): number | null {
  if (process.platform !== 'linux') return null;
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    return Number.isInteger(tid) && tid > 0 ? tid : null;
  } catch {
    return null;
  }
}
