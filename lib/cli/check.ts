import { checkDataDir } from '../store/integrity.js';
import { withDataDir } from './data-dir-command.js';
import { envName } from './env.js';
import { DEFAULT_DATA_DIR } from './serve.js';

export const CHECK_HELP = `Usage: pigeonhole check [--data-dir DIR]

Checks a data directory fully, while no server uses it: that its files are the ones
pigeonhole.json names, and every shard file with SQLite's integrity_check (every page,
every row, the index against the table), that each row is a well-formed message, that
each mailbox sits in the shard file its name belongs to, and that no write-ahead log a
crash left is damaged before transactions committed after the damage (SQLite would
drop them: such a file is not opened, so its log is kept). It changes no message. Not
found: a byte changed inside a message's body (SQLite keeps no page checksums), damage
with only the log's last transaction behind it, or a damaged log header.

Options:
  --data-dir DIR   the data directory (default ${DEFAULT_DATA_DIR}, or
                   ${envName('data-dir')} when it is set, as for serve)
  -h, --help       show this help

Exit codes: 0 no damage; 1 damage found, or the directory could not be checked (a
server is using it, say); 2 a bad option, or no data directory at DIR. After damage:
pigeonhole salvage.
`;

export async function check(args: string[]): Promise<number> {
  return withDataDir(args, CHECK_HELP, (dir) => {
    const report = checkDataDir(dir);
    const out: string[] = [];
    if (report.layout !== null) out.push(`${dir}: ${report.layout.shards} shard file(s), generation ${report.layout.generation}`);
    for (const problem of report.problems) out.push(`LAYOUT: ${problem}`);
    for (const file of report.files) {
      const count = file.messages === null ? '' : `${file.messages} message(s)`;
      if (file.problems.length === 0) {
        out.push(`${file.file}: ok, ${count}`);
        continue;
      }
      out.push(`${file.file}: DAMAGED${count === '' ? '' : ` (${count} in its table)`}`);
      for (const problem of file.problems) out.push(`  ${problem}`);
    }
    if (report.ok) {
      out.push('no damage found');
      process.stdout.write(`${out.join('\n')}\n`);
      return 0;
    }
    // Salvage starts from the layout: without one, mending it is the way out (said above).
    if (report.layout === null) {
      if (report.mendLayout) out.push('the layout must be mended first: salvage needs it');
    } else {
      out.push(`damage found: with no server running, 'pigeonhole salvage --data-dir ${dir}' copies every readable message into a fresh generation`);
    }
    process.stdout.write(`${out.join('\n')}\n`);
    return 1;
  });
}
