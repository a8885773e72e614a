import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keepYoungGenerationSmall } from '../../lib/util/young-generation.js';
import { startServe, stopServe } from '../helpers/serve-cli.js';
import { HOST } from '../helpers/server.js';

// Makes objects that survive scavenges (what makes V8 grow its young generation), then
// prints the young generation's size in MiB. `before` runs first in the same module.
const churn = (apply: boolean, before = ''): number => {
  const script = `
    const { keepYoungGenerationSmall } = await import(${JSON.stringify(new URL('../../lib/util/young-generation.ts', import.meta.url).href)});
    ${apply ? 'keepYoungGenerationSmall([], "");' : ''}
    ${before}
    const v8 = await import('node:v8');
    let keep = [];
    for (let i = 0; i < 2e6; i++) { keep.push({ i, s: 'x' + i }); if (keep.length > 200000) keep = []; }
    const space = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
    console.log(space.space_size / 2 ** 20);
    process.exit(0);
  `;
  // A file rather than --eval: worker threads started by the script inherit the
  // process's flags, and --input-type would break theirs.
  const dir = mkdtempSync(join(tmpdir(), 'ph-young-'));
  try {
    const file = join(dir, 'churn.mjs');
    writeFileSync(file, script);
    return Number(execFileSync(process.execPath, ['--import', 'tsx', file], { encoding: 'utf8' }).trim());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};
// A worker thread that runs until the process exits, once it is online.
const startWorker = (): string => `
  const { Worker } = await import('node:worker_threads');
  const worker = new Worker('setInterval(() => {}, 1000)', { eval: true });
  await new Promise((resolve) => worker.once('online', resolve));
`;
// V8's flag set directly, as keepYoungGenerationSmall() does, without its care for new threads.
const RAW_FLAG = `(await import('node:v8')).setFlagsFromString('--semi-space-growth-factor=1');`;

test('the young generation stays at its starting size, where V8 would have grown it', (t) => {
  const grown = churn(false);
  const kept = churn(true);
  t.true(grown > 8, `without it V8 grows the young generation (${grown} MiB)`);
  t.true(kept <= 4, `with it the young generation stays small (${kept} MiB)`);
});

test('a worker thread starting undoes the setting, and keepYoungGenerationSmall() applies it again as the thread comes online', (t) => {
  const undone = churn(false, RAW_FLAG + startWorker());
  const again = churn(true, startWorker());
  const never = churn(false, startWorker());
  t.true(undone > 8, `a worker's start lets V8 grow the young generation again (${undone} MiB)`);
  t.true(again <= 4, `applied again, it stays small (${again} MiB)`);
  t.true(never > 8, `not applied before, a new thread changes nothing (${never} MiB)`);
});

test("a size the user set, on the command line or in NODE_OPTIONS, is left alone", (t) => {
  t.false(keepYoungGenerationSmall(['--max-semi-space-size=8'], ''));
  t.false(keepYoungGenerationSmall([], '--max-old-space-size=100 --semi-space-growth-factor=4'));
  t.false(keepYoungGenerationSmall([], '--max_semi_space_size=2'));
});

test('a server keeps it small once its shard threads, and then its acceptor threads, are up', (t) => {
  const serve = (options: string): string => `
    const { createServer } = await import(${JSON.stringify(new URL('../../lib/server.ts', import.meta.url).href)});
    await createServer(${options}).listen({ port: 0, host: '127.0.0.1' });
  `;
  const grown = churn(false, serve('{ shards: 2, acceptors: 2 }'));
  const shards = churn(true, serve('{ shards: 2 }'));
  const acceptors = churn(true, serve('{ shards: 2, acceptors: 2 }'));
  // While a thread starts, before it is online, the setting is off: the young generation
  // may grow a step or two then (2 to 8 MiB, on a busy machine), not to 32.
  t.true(grown > 16, `without the setting the young generation grows (${grown} MiB)`);
  t.true(shards <= 8, `applied again as each shard came up, it stays small (${shards} MiB)`);
  t.true(acceptors <= 8, `and again as each acceptor thread came up (${acceptors} MiB)`);
});

test('the pigeonhole command keeps it small from before its modules load', async (t) => {
  // Loading the server's modules grows it to 2 × 4 MiB when the setting comes after them
  // (under tsx, whose own loader has run first, to 2 × 2 MiB when it comes before).
  const served = await startServe(t, ['--memory', '--shards', '0', '--port', '0', '--host', HOST, '--metrics', `${HOST}:0`]);
  const announced = await served.waitForLog((line) => typeof line.url === 'string', 'with the metrics address');
  const metrics = await (await fetch(String(announced.url))).text();
  await stopServe(t, served);
  const newSpace = Number(/^pigeonhole_nodejs_heap_space_size_total_bytes\{space="new"\} (\d+)$/m.exec(metrics)?.[1]);
  t.true(newSpace > 0, metrics);
  t.true(newSpace <= 4 * 2 ** 20, `the young generation at start: ${newSpace / 2 ** 20} MiB`);
});
