import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { openDataDir } from '../store/data-dir.js';
import { UsageError } from './flags.js';
import { DEFAULT_DATA_DIR } from './serve.js';

/**
 * A command over an existing data directory (`check`, `salvage`): parses `--data-dir`
 * and `--help`, then runs `work` on the directory while holding its lock, so no server
 * can open it meanwhile. Returns the exit status.
 */
export function withDataDir(args: string[], help: string, work: (dir: string) => number): number {
  const { values } = parseArgs({
    args,
    options: { 'data-dir': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(help);
    return 0;
  }
  if (values['data-dir'] === '') throw new UsageError('--data-dir cannot be empty');
  const dir = resolve(values['data-dir'] ?? DEFAULT_DATA_DIR);
  // Neither command may create what it works on.
  if (!existsSync(dir)) throw new UsageError(`no data directory at ${dir}`);
  const release = openDataDir(dir);
  try {
    return work(dir);
  } finally {
    release();
  }
}
