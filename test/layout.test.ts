// lib/ is layered by role, and imports only go down: a reader (and a change) can take
// one layer at a time. The order is the way of a command: util and errors at the
// bottom, then the protocol, stores and the client library, the shards, the session
// (connections), the acceptor threads, the face (server, options, index), and the CLI
// on top.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

// [path prefix, rank, group]: a file may import files of a lower rank, or of its own
// group (store and client share a rank but know nothing of each other).
const LAYERS: [prefix: string, rank: number, group: string][] = [
  ['lib/util/', 0, 'base'],
  ['lib/errors.ts', 0, 'base'],
  ['lib/logger.ts', 0, 'base'],
  ['lib/protocol/', 1, 'protocol'],
  // TLS material and identity: below the client library and the session, which use them.
  ['lib/tls/', 1.5, 'tls'],
  ['lib/store/', 2, 'store'],
  ['lib/client/', 2, 'client'],
  ['lib/shards/', 3, 'shards'],
  ['lib/session/', 4, 'session'],
  // Reads the session's and the shards' counters; the server (the face) makes the registry.
  ['lib/metrics/', 4.5, 'metrics'],
  // Acceptor threads: sessions over routers, their supervision, sharing the port.
  ['lib/acceptors/', 4.7, 'acceptors'],
  // Thread entries: a shard's, an acceptor's.
  ['workers/', 4.8, 'workers'],
  ['lib/options.ts', 5, 'face'],
  ['lib/server.ts', 5, 'face'],
  ['lib/index.ts', 5, 'face'],
  ['lib/cli/', 6, 'cli'],
];

function layerOf(file: string): { rank: number; group: string } {
  const entry = LAYERS.find(([prefix]) => file === prefix || file.startsWith(prefix));
  if (entry === undefined) throw new Error(`${file} belongs to no layer: add its folder to LAYERS`);
  return { rank: entry[1], group: entry[2] };
}

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** Relative imports of a file (import and export ... from, types included), as repo paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const found = [...text.matchAll(/^(?:import|export)\s[^;]*?from\s+'(\.{1,2}\/[^']+)'/gms)].map((match) => match[1] as string);
  return found.map((specifier) => relative(ROOT, join(ROOT, dirname(file), specifier)).replace(/\.js$/, '.ts'));
}

const files = [...sources('lib'), ...sources('workers')];
const graph = new Map(files.map((file) => [file, importsOf(file)]));

test('every lib/ file sits in a layer, and every relative import names a file that exists', (t) => {
  for (const [file, imports] of graph) {
    t.notThrows(() => layerOf(file), file);
    for (const target of imports) t.true(graph.has(target), `${file} imports ${target}, which is not a source file`);
  }
});

test('imports only go down the layers (or stay in their own folder)', (t) => {
  const upward: string[] = [];
  for (const [file, imports] of graph) {
    for (const target of imports) {
      if (!graph.has(target)) continue;
      const from = layerOf(file);
      const to = layerOf(target);
      if (to.group !== from.group && to.rank >= from.rank) upward.push(`${file} -> ${target}`);
    }
  }
  t.deepEqual(upward, []);
});

test('there are no import cycles', (t) => {
  const state = new Map<string, 'visiting' | 'done'>();
  const cycles: string[] = [];
  const visit = (file: string, path: string[]): void => {
    if (state.get(file) === 'done') return;
    if (state.get(file) === 'visiting') {
      cycles.push([...path.slice(path.indexOf(file)), file].join(' -> '));
      return;
    }
    state.set(file, 'visiting');
    for (const target of graph.get(file) ?? []) visit(target, [...path, file]);
    state.set(file, 'done');
  };
  for (const file of graph.keys()) visit(file, []);
  t.deepEqual(cycles, []);
});
