// `npm run bench -- --chart FILE.svg`: the run as a picture, rendered by vega-lite and
// vega in Node (no browser): ops/s per configuration, and each configuration's latency
// percentile curve from p50 to p99.9, from the HDR histograms the generator recorded.
// With several rounds, each figure is the median over the rounds.
import { writeFile } from 'node:fs/promises';
import * as vega from 'vega';
import * as vegaLite from 'vega-lite';
import type { BenchReport } from './harness.js';
import { formatHeaderLine } from './report.js';
import { byConfiguration, spread } from './summary.js';

// The percentiles a curve is drawn at: the tail is what differs between servers.
const PERCENTILES = [50, 75, 90, 95, 99, 99.5, 99.9];

interface Point {
  readonly config: string;
  readonly percentile: string;
  readonly order: number;
  readonly ms: number;
}

/** The latency in ms at `percentile` from an HDR distribution of [percentile, ns] steps. */
function at(distribution: readonly [number, number][], percentile: number): number | null {
  for (const [p, ns] of distribution) if (p >= percentile) return ns / 1e6;
  const last = distribution.at(-1);
  return last === undefined ? null : last[1] / 1e6;
}

export function chartSpec(report: BenchReport): vegaLite.TopLevelSpec {
  const configs: string[] = [];
  const throughput: { config: string; ops: number }[] = [];
  const latency: Point[] = [];
  for (const [config, rows] of byConfiguration(report)) {
    const results = rows.flatMap((row) => (row.result === null ? [] : [row.result]));
    const ops = spread(results.map((result) => result.opsPerSecond));
    if (ops === null) continue;
    configs.push(config);
    throughput.push({ config, ops: Math.round(ops.median) });
    PERCENTILES.forEach((percentile, order) => {
      const ms = spread(results.map((result) => at(result.latency.distribution, percentile)).filter((value) => value !== null));
      if (ms !== null) latency.push({ config, percentile: `p${percentile}`, order, ms: ms.median });
    });
  }
  const colour = { field: 'config', type: 'nominal', title: 'configuration', scale: { domain: configs } } as const;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'pigeonhole bench', subtitle: formatHeaderLine(report) },
    config: { font: 'sans-serif', view: { stroke: null } },
    hconcat: [
      {
        title: 'throughput',
        width: 260,
        height: 240,
        data: { values: throughput },
        mark: { type: 'bar', tooltip: true },
        encoding: {
          x: { field: 'config', type: 'nominal', sort: configs, title: null, axis: { labelAngle: -30 } },
          y: { field: 'ops', type: 'quantitative', title: 'commands/s' },
          color: colour,
        },
      },
      {
        title: 'latency by percentile',
        width: 320,
        height: 240,
        data: { values: latency },
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'percentile', type: 'ordinal', sort: PERCENTILES.map((p) => `p${p}`), title: null, axis: { labelAngle: 0 } },
          y: { field: 'ms', type: 'quantitative', scale: { type: 'log' }, title: 'ms (log scale)' },
          color: colour,
        },
      },
    ],
  };
}

/** Renders the report's chart to an SVG file. */
export async function writeChart(file: string, report: BenchReport): Promise<void> {
  const { spec } = vegaLite.compile(chartSpec(report));
  const view = new vega.View(vega.parse(spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  await writeFile(file, svg);
}
