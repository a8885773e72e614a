import test from 'ava';
import { execFileSync } from 'node:child_process';
import { keepYoungGenerationSmall } from '../../lib/cli/young-generation.js';

// Makes objects that survive scavenges (what makes V8 grow its young generation), then
// prints the young generation's size in MiB.
const churn = (apply: boolean): number => {
  const script = `
    ${apply ? `const { keepYoungGenerationSmall } = await import(${JSON.stringify(new URL('../../lib/cli/young-generation.ts', import.meta.url).href)}); keepYoungGenerationSmall([], '');` : ''}
    const v8 = await import('node:v8');
    let keep = [];
    for (let i = 0; i < 2e6; i++) { keep.push({ i, s: 'x' + i }); if (keep.length > 200000) keep = []; }
    const space = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
    console.log(space.space_size / 2 ** 20);
  `;
  return Number(execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' }).trim());
};

test('the young generation stays at its starting size, where V8 would have grown it', (t) => {
  const grown = churn(false);
  const kept = churn(true);
  t.true(grown > 8, `without it V8 grows the young generation (${grown} MiB)`);
  t.true(kept <= 4, `with it the young generation stays small (${kept} MiB)`);
});

test("a size the user set, on the command line or in NODE_OPTIONS, is left alone", (t) => {
  t.false(keepYoungGenerationSmall(['--max-semi-space-size=8'], ''));
  t.false(keepYoungGenerationSmall([], '--max-old-space-size=100 --semi-space-growth-factor=4'));
  t.false(keepYoungGenerationSmall([], '--max_semi_space_size=2'));
});
