import { setFlagsFromString } from 'node:v8';

// A setting of the user's own, on the command line or in NODE_OPTIONS, is left alone.
const USER_SETTING = /semi[-_]space|young[-_]generation/;
// Read by V8 each time it would grow the young generation: a factor of 1 keeps it as is.
const FLAG = '--semi-space-growth-factor=1';

let kept = false;

/**
 * Stops V8's young generation (two semi-spaces of 1 MiB at a thread's start) from
 * growing further, in every thread of this process. V8 grows it up to 2 × 16 MiB while many objects survive
 * its scavenges, which buys nothing for a server whose hot path makes few objects (the
 * same ops/s at pipeline 16 either way, bench/RESULTS.md) and costs up to some 30 MiB of
 * RSS per thread. For the process the `pigeonhole` command owns, called before its
 * modules load (lib/cli/main.ts): V8 grows it while they do, and does not give it back;
 * an application that embeds the server makes this choice for its own process. Returns
 * whether it applied.
 *
 * Starting a worker thread puts V8's growth factor back to its default for every thread
 * of the process (measured: after a Worker starts, the main thread's young generation
 * grows to 2 × 16 MiB again), so it is applied again as each worker thread this thread
 * starts comes online: shards, acceptors, anything else.
 */
export function keepYoungGenerationSmall(execArgv: readonly string[] = process.execArgv, nodeOptions: string = process.env.NODE_OPTIONS ?? ''): boolean {
  if ([...execArgv, nodeOptions].some((arg) => USER_SETTING.test(arg))) return false;
  setFlagsFromString(FLAG);
  if (!kept) process.on('worker', (worker) => worker.once('online', () => setFlagsFromString(FLAG)));
  kept = true;
  return true;
}
