import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { openDataDir } from '../store/data-dir.js';
import { blameEnvironment, withEnvironment } from './env.js';
import { UsageError } from './flags.js';
import { DEFAULT_DATA_DIR } from './serve.js';

const DATA_DIR_FLAGS = { 'data-dir': { type: 'string' }, help: { type: 'boolean', short: 'h' } } as const;

/**
 * A command over an existing data directory (`check`, `salvage`): parses `--data-dir`
 * (or PIGEONHOLE_DATA_DIR, the directory of a server configured through the
 * environment) and `--help`, then runs `work` on the directory while holding its lock, so
 * no server can open it meanwhile. Returns the exit status.
 */
export function withDataDir(args: string[], help: string, work: (dir: string) => number, env: NodeJS.ProcessEnv = process.env): number {
  const parsed = parseArgs({ args, options: DATA_DIR_FLAGS, strict: true, allowPositionals: false });
  if (parsed.values.help) {
    process.stdout.write(help);
    return 0;
  }
  const { values, fromEnv } = withEnvironment(parsed.values, DATA_DIR_FLAGS, env);
  let dir: string;
  try {
    dir = existingDataDir(values['data-dir']);
  } catch (err) {
    throw blameEnvironment(err, fromEnv);
  }
  const release = openDataDir(dir);
  try {
    return work(dir);
  } finally {
    release();
  }
}

/** The directory `--data-dir` names (or the default), which must exist: neither command may create what it works on. */
function existingDataDir(flag: string | undefined): string {
  if (flag === '') throw new UsageError('--data-dir cannot be empty');
  const dir = resolve(flag ?? DEFAULT_DATA_DIR);
  if (!existsSync(dir)) throw new UsageError(`no data directory at ${dir} (${flag === undefined ? 'the default; --data-dir names another' : '--data-dir'})`);
  return dir;
}
