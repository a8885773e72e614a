import { setFlagsFromString } from 'node:v8';

// A setting of the user's own, on the command line or in NODE_OPTIONS, is left alone.
const USER_SETTING = /semi[-_]space|young[-_]generation/;

/**
 * Keeps V8's young generation at its starting size (two 1 MiB semi-spaces) in every
 * thread of this process. V8 grows it up to 2 × 16 MiB while many objects survive its
 * scavenges, which buys nothing for a server whose hot path makes few objects (the same
 * ops/s at pipeline 16 either way, bench/RESULTS.md) and costs up to some 30 MiB of RSS
 * per thread. For the process `pigeonhole serve` owns; an application that embeds the
 * server makes this choice for its own process. Call before any worker thread starts.
 * Returns whether it applied.
 */
export function keepYoungGenerationSmall(execArgv: readonly string[] = process.execArgv, nodeOptions: string = process.env.NODE_OPTIONS ?? ''): boolean {
  if ([...execArgv, nodeOptions].some((arg) => USER_SETTING.test(arg))) return false;
  // Read by V8 each time it would grow the young generation: a factor of 1 keeps it as is.
  setFlagsFromString('--semi-space-growth-factor=1');
  return true;
}
