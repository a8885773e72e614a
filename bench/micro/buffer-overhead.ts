// What an ArrayBuffer costs besides its bytes: allocates COUNT Buffers of SIZE bytes
// each (Buffer.allocUnsafeSlow, an ArrayBuffer each, as mailbox chunks were before
// store/page-pool.ts), writes them so their pages are resident, and reports how much
// the process's RSS grew beyond the bytes themselves, per Buffer. Run with --expose-gc,
// so that garbage is collected before each reading.
//
//   node --expose-gc --import tsx bench/micro/buffer-overhead.ts [SIZE COUNT]...
//   e.g. node --expose-gc --import tsx bench/micro/buffer-overhead.ts 8192 9000 4096 18000
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const pairs = process.argv.slice(2).map(Number);
if (pairs.length === 0 || pairs.length % 2 !== 0 || pairs.some((n) => !Number.isInteger(n) || n < 1)) {
  process.stderr.write('Usage: node --expose-gc --import tsx bench/micro/buffer-overhead.ts SIZE COUNT [SIZE COUNT]...\n');
  process.exit(2);
}

if (process.env.BUFFER_OVERHEAD_CHILD === undefined) {
  // Each size in a fresh process, so one size's freed memory does not feed the next.
  for (let i = 0; i < pairs.length; i += 2) {
    process.stdout.write(execFileSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), String(pairs[i]), String(pairs[i + 1])], { env: { ...process.env, BUFFER_OVERHEAD_CHILD: '1' }, encoding: 'utf8' }));
  }
} else {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with node --expose-gc');
  const [size, count] = pairs as [number, number];
  const rss = (): number => process.memoryUsage.rss();
  gc();
  const before = rss();
  const kept: Buffer[] = [];
  for (let i = 0; i < count; i++) kept.push(Buffer.allocUnsafeSlow(size).fill(1));
  gc();
  const grown = rss() - before;
  const data = size * count;
  const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);
  process.stdout.write(`${count} Buffers of ${size} bytes: ${mib(data)} MiB of data, RSS +${mib(grown)} MiB, ${Math.round((grown - data) / count)} bytes per Buffer besides its own (${kept.length} kept)\n`);
}
