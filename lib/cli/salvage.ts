import { join } from 'node:path';
import { salvageDataDir } from '../store/salvage.js';
import { withDataDir } from './data-dir-command.js';
import { envName } from './env.js';
import { DEFAULT_DATA_DIR } from './serve.js';

export const SALVAGE_HELP = `Usage: pigeonhole salvage [--data-dir DIR]

Copies every message that can still be read from the data directory's shard files,
in order, into a fresh generation with the same number of shards, and makes that the
one the server serves. It reports how many messages were saved and exactly how many
could not be (a lower bound only when a file's index cannot be read whole and its
table may be damaged too, a shard file is missing, or its write-ahead log is damaged). Run it while no server uses the directory, when the
server will not start because a shard file is damaged or missing. The old generation
is kept as DIR/salvaged-gen-N for you to remove once you no longer need it.

Options:
  --data-dir DIR   the data directory (default ${DEFAULT_DATA_DIR}, or
                   ${envName('data-dir')} when it is set, as for serve)
  -h, --help       show this help

Exit codes: 0 salvaged (whatever was lost is reported); 1 it could not be done (a
server is using the directory, the disk is full, ...); 2 a bad option, or no data
directory at DIR.
`;

export async function salvage(args: string[]): Promise<number> {
  return withDataDir(args, SALVAGE_HELP, (dir) => {
    const report = salvageDataDir(dir);
    const out: string[] = [];
    for (const file of report.files) {
      const lost = file.lost === 0 ? '' : `, ${file.lost}${file.exact ? '' : ' or more'} could not be saved`;
      out.push(`${file.file}: ${file.saved} saved${lost}${file.problems.length === 0 ? '' : ` (${file.problems.join('; ')})`}`);
    }
    const lost = report.exact ? `${report.lost}` : `at least ${report.lost}`;
    out.push(`saved ${report.saved} message(s) into ${report.generation}/; ${lost} could not be saved`);
    if (!report.exact) out.push('(not counted: the messages of files whose damage hides how many they held, as said above)');
    out.push(`the old generation is kept as ${join(dir, report.keptAs)}/: remove it once you no longer need it`);
    process.stdout.write(`${out.join('\n')}\n`);
    return 0;
  });
}
