// `npm run bench -- [options]`: see --help and bench/README.md.
import { type BenchReport, reportOk, runBenchmark } from './harness.js';
import { UsageError } from '../lib/cli/flags.js';
import { HELP, parseBenchArgs } from './options.js';
import { writeChart } from './chart.js';
import { formatChecks, formatHeader, formatResults, writeJson } from './report.js';

async function main(args: string[]): Promise<number> {
  let options;
  try {
    const parsed = parseBenchArgs(args);
    if (parsed === 'help') {
      process.stdout.write(HELP);
      return 0;
    }
    options = parsed;
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`bench: ${err.message}\nRun with --help for the options.\n`);
    return 2;
  }
  if (options.shards.length === 0 && options.target === null && !options.redis) {
    process.stderr.write('bench: nothing to run: --shards none needs --redis or --target\n');
    return 2;
  }
  const commandLine = ['bench', ...args].join(' ');
  const report: BenchReport = await runBenchmark(options, { log: (line) => process.stderr.write(`bench: ${line}\n`) });
  process.stdout.write(`\n${formatHeader(report, commandLine)}\n\n${formatResults(report)}\n\n${formatChecks(report)}\n`);
  if (options.chart !== null) {
    await writeChart(options.chart, report);
    process.stdout.write(`\nwrote ${options.chart}\n`);
  }
  if (options.json !== null) {
    await writeJson(options.json, report);
    process.stdout.write(`\nwrote ${options.json}\n`);
  }
  return reportOk(report) ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2));
