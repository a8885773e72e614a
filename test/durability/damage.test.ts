// Damage the checks can see is never silent: a shard file overwritten mid-file stops the start, `check`
// finds it, `salvage` saves every readable message and says exactly how many it could
// not; so does a write-ahead log damaged in its middle; a missing or foreign shard file
// stops the start too.
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { silentLogger } from '../../lib/logger.js';
import { createServer } from '../../lib/server.js';
import { runCli } from '../helpers/cli.js';
import { middleTableLeaf, overwrite } from '../helpers/damage.js';
import { FORMAT, createGeneration } from '../../lib/store/layout.js';
import { salvageDataDir } from '../../lib/store/salvage.js';
import { findWalDamage } from '../../lib/store/wal-damage.js';
import { LineClient } from '../helpers/line-client.js';
import { checkDelivery, drain, flood } from './flood.js';

const RECIPIENTS = Array.from({ length: 12 }, (_, i) => `r${i}`);

function dataDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'pigeonhole-damage-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A data directory of two shards holding `perSender` × 8 acknowledged messages, cleanly closed. */
async function filled(dir: string, perSender: number): Promise<Awaited<ReturnType<typeof flood>>> {
  const server = createServer({ shards: 2, dataDir: dir, maxMessagesPerUser: 100_000, logger: silentLogger });
  const { port } = await server.listen({ port: 0 });
  const flooded = await flood({ port, senders: 8, recipients: RECIPIENTS, pipeline: 64, perSender });
  await server.close();
  return flooded;
}

async function countsAt(port: number): Promise<number> {
  let total = 0;
  for (const user of RECIPIENTS) {
    const client = await LineClient.connect(port);
    await client.send(`LOGIN ${user}\nEXIT\n`);
    total += Number((await client.readLine()).toString());
    client.destroy();
  }
  return total;
}

test('512 bytes overwritten mid-file: the start refuses it, check finds it, salvage saves the rest and counts the loss exactly', async (t) => {
  const dir = dataDir(t);
  const flooded = await filled(dir, 2_500);
  t.is(flooded.acked.size, 20_000);
  const file = join(dir, 'gen-1', 'shard-1.db');
  const page = middleTableLeaf(file);
  overwrite(file, page.offset + 1024, Buffer.alloc(512, 0xa5));

  // The start: refused, naming the file and the way out; nothing served.
  const refused = createServer({ shards: 2, dataDir: dir, logger: silentLogger });
  const error = await t.throwsAsync(refused.listen({ port: 0 }));
  t.is((error?.cause as { code?: string } | undefined)?.code, 'PH_ERR_STORE_DAMAGED', `${error?.message} / cause: ${String(error?.cause)}`);
  t.true(error?.message.includes(file), error?.message);
  t.regex(error?.message ?? '', /pigeonhole salvage --data-dir/);

  const check = await runCli(t, ['check', '--data-dir', dir]);
  t.is(check.code, 1, check.stdout + check.stderr);
  t.regex(check.stdout, /gen-1\/shard-0\.db: ok, \d+ message/);
  t.regex(check.stdout, /gen-1\/shard-1\.db: DAMAGED/);

  const salvage = await runCli(t, ['salvage', '--data-dir', dir]);
  t.is(salvage.code, 0, salvage.stdout + salvage.stderr);
  // Every row of the damaged page is lost (its bytes cannot be trusted), nothing else.
  const saved = 20_000 - page.cells;
  t.regex(salvage.stdout, new RegExp(`saved ${saved} message\\(s\\) into gen-2/; ${page.cells} could not be saved`));
  t.true(readdirSync(dir).includes('salvaged-gen-1'), 'the damaged generation is kept for the operator');
  const recheck = await runCli(t, ['check', '--data-dir', dir]);
  t.is(recheck.code, 0, recheck.stdout);

  // Served again: LOGIN counts only what READ delivers, and it delivers exactly that.
  const server = createServer({ shards: 2, dataDir: dir, logger: silentLogger });
  t.teardown(() => server.close());
  const { port } = await server.listen({ port: 0 });
  t.is(await countsAt(port), saved);
  const delivered = await drain(port, RECIPIENTS);
  const problems = checkDelivery(delivered, flooded, RECIPIENTS);
  // The only problems: the lost messages, missing. Nothing invented, doubled or reordered.
  t.is(problems.length, page.cells, problems.filter((problem) => !problem.startsWith('acknowledged')).join('\n'));
  t.true(problems.every((problem) => /^acknowledged .* is missing$/.test(problem)));
});

test('a write-ahead log damaged in its middle: the start refuses it, check keeps the log, salvage keeps a copy and says the loss is not counted', async (t) => {
  const live = dataDir(t);
  const running = createServer({ shards: 2, dataDir: live, maxMessagesPerUser: 100_000, logger: silentLogger });
  const { port: livePort } = await running.listen({ port: 0 });
  const flooded = await flood({ port: livePort, senders: 8, recipients: RECIPIENTS, pipeline: 4, perSender: 300 });
  t.is(flooded.acked.size, 2_400);
  // The directory as kill -9 would leave it, copied while the server runs and is idle:
  // each shard's WAL still holds its last batches.
  const dir = dataDir(t);
  copyFileSync(join(live, 'pigeonhole.json'), join(dir, 'pigeonhole.json'));
  cpSync(join(live, 'gen-1'), join(dir, 'gen-1'), { recursive: true });
  await running.close();

  const file = join(dir, 'gen-1', 'shard-1.db');
  const wal = `${file}-wal`;
  // One byte of the second frame's page: every batch committed after it is behind it.
  overwrite(wal, 32 + (24 + 4096) + 24 + 100, Buffer.from([0x5a]));
  const damage = findWalDamage(file);
  t.truthy(damage, 'the copy has a WAL with commits after its second frame');
  const walBytes = readFileSync(wal);

  const refused = createServer({ shards: 2, dataDir: dir, logger: silentLogger });
  const error = await t.throwsAsync(refused.listen({ port: 0 }));
  t.is((error?.cause as { code?: string } | undefined)?.code, 'PH_ERR_STORE_DAMAGED');
  t.true(error?.message.includes(wal), error?.message);
  t.regex(error?.message ?? '', /write-ahead log .* damaged at frame 2 of \d+, with \d+ transaction\(s\) committed after it/);
  t.regex(error?.message ?? '', /pigeonhole salvage --data-dir/);
  t.deepEqual(readFileSync(wal), walBytes, 'the refused start left the log as it was');

  const check = await runCli(t, ['check', '--data-dir', dir]);
  t.is(check.code, 1, check.stdout + check.stderr);
  t.regex(check.stdout, /gen-1\/shard-1\.db: DAMAGED\n {2}its write-ahead log .* not opened, so that the log is kept/);
  t.deepEqual(readFileSync(wal), walBytes, 'check changed nothing');

  const salvage = await runCli(t, ['salvage', '--data-dir', dir]);
  t.is(salvage.code, 0, salvage.stdout + salvage.stderr);
  t.regex(salvage.stdout, /gen-1\/shard-1\.db: \d+ saved \(its write-ahead log .*: their messages could not be read and are not counted \(the log is kept as salvaged-gen-1\/shard-1\.db-wal\.damaged\)\)/);
  t.regex(salvage.stdout, /; at least 0 could not be saved\n\(not counted: the messages of files whose damage hides how many they held/);
  t.deepEqual(readFileSync(join(dir, 'salvaged-gen-1', 'shard-1.db-wal.damaged')), walBytes, 'the damaged log is kept for the operator');
  t.false(existsSync(join(dir, 'salvaged-gen-1', 'shard-0.db-wal.damaged')), 'the whole log of shard 0 is not');

  // Served again: what was saved, and nothing invented, doubled or reordered.
  const server = createServer({ shards: 2, dataDir: dir, logger: silentLogger });
  t.teardown(() => server.close());
  const { port } = await server.listen({ port: 0 });
  const problems = checkDelivery(await drain(port, RECIPIENTS), flooded, RECIPIENTS);
  t.true(problems.length > 0, 'the transactions after the damage are lost');
  t.true(problems.every((problem) => /^acknowledged .* is missing$/.test(problem)), problems.filter((problem) => !problem.startsWith('acknowledged')).join('\n'));
});

test('a deleted shard file stops the start with a clear error; nothing is recreated or changed', async (t) => {
  const dir = dataDir(t);
  await filled(dir, 100);
  unlinkSync(join(dir, 'gen-1', 'shard-1.db'));
  const server = createServer({ shards: 2, dataDir: dir, logger: silentLogger });
  const error = await t.throwsAsync(server.listen({ port: 0 }));
  t.is((error as { code?: string }).code, 'PH_ERR_STORE_LAYOUT_MISMATCH');
  t.regex(error?.message ?? '', /gen-1\/shard-1\.db is missing/);
  t.regex(error?.message ?? '', /pigeonhole salvage --data-dir/);
  t.deepEqual(readdirSync(join(dir, 'gen-1')).sort(), ['shard-0.db'], 'no empty file was made in its place');

  // Asked for another shard count, it does not migrate the half that is left either.
  const migrating = createServer({ shards: 3, dataDir: dir, logger: silentLogger });
  t.is(((await t.throwsAsync(migrating.listen({ port: 0 }))) as { code?: string }).code, 'PH_ERR_STORE_LAYOUT_MISMATCH');
  t.false(readdirSync(dir).includes('gen-2'));

  // The way out the message names: salvage what is there, then serve it.
  const salvage = await runCli(t, ['salvage', '--data-dir', dir]);
  t.is(salvage.code, 0, salvage.stderr);
  t.regex(salvage.stdout, /gen-1\/shard-1\.db: 0 saved.*missing/);
  t.regex(salvage.stdout, /at least 0 could not be saved/);
  const after = createServer({ shards: 2, dataDir: dir, logger: silentLogger });
  t.teardown(() => after.close());
  await t.notThrowsAsync(after.listen({ port: 0 }));
});

test('a salvage that stopped after its new layout, before keeping the old generation: the next start or salvage keeps it, it is not removed', async (t) => {
  const dir = dataDir(t);
  await filled(dir, 10);
  const report = salvageDataDir(dir);
  t.is(report.saved, 80);
  t.is(report.keptAs, 'salvaged-gen-1');
  t.deepEqual(JSON.parse(readFileSync(join(dir, 'pigeonhole.json'), 'utf8')), { format: FORMAT, shards: 2, generation: 2 }, 'the request to keep is done with');
  const kept = readdirSync(join(dir, 'salvaged-gen-1')).sort();

  // The directory as a crash right after the layout's flip leaves it: gen-1 not yet renamed.
  const stopped = (): void => {
    cpSync(join(dir, 'salvaged-gen-1'), join(dir, 'gen-1'), { recursive: true });
    rmSync(join(dir, 'salvaged-gen-1'), { recursive: true });
    writeFileSync(join(dir, 'pigeonhole.json'), JSON.stringify({ format: FORMAT, shards: 2, generation: 2, keep: { generation: 1, as: 'salvaged-gen-1' } }));
  };
  stopped();
  const server = createServer({ shards: 2, dataDir: dir, logger: silentLogger });
  const { port } = await server.listen({ port: 0 });
  t.is(await countsAt(port), 80, 'the salvaged generation is served');
  await server.close();
  t.false(existsSync(join(dir, 'gen-1')));
  t.deepEqual(readdirSync(join(dir, 'salvaged-gen-1')).sort(), kept, 'the old generation is kept, under the name salvage gave');
  t.deepEqual(JSON.parse(readFileSync(join(dir, 'pigeonhole.json'), 'utf8')), { format: FORMAT, shards: 2, generation: 2 });

  // Salvage run again over the same state keeps both: the first's, then its own.
  stopped();
  t.is(salvageDataDir(dir).keptAs, 'salvaged-gen-2');
  t.deepEqual(readdirSync(dir).filter((entry) => entry.includes('gen-')).sort(), ['gen-3', 'salvaged-gen-1', 'salvaged-gen-2']);

  // A request to keep beside a generation that is gone: the start's usual refusal and advice.
  writeFileSync(join(dir, 'pigeonhole.json'), JSON.stringify({ format: FORMAT, shards: 2, generation: 9, keep: { generation: 3, as: 'salvaged-gen-3.2' } }));
  const gone = await t.throwsAsync(createServer({ shards: 2, dataDir: dir, logger: silentLogger }).listen({ port: 0 }));
  t.is((gone as { code?: string }).code, 'PH_ERR_STORE_LAYOUT_MISMATCH');
  t.regex(gone?.message ?? '', /gen-9\/ is missing/);
  t.true(existsSync(join(dir, 'salvaged-gen-3.2')), 'what it asked to keep is kept');

  // A request to keep that names anything but a salvaged-gen folder is no layout of ours.
  writeFileSync(join(dir, 'pigeonhole.json'), JSON.stringify({ format: FORMAT, shards: 2, generation: 3, keep: { generation: 2, as: '../elsewhere' } }));
  const refused = await t.throwsAsync(createServer({ shards: 2, dataDir: dir, logger: silentLogger }).listen({ port: 0 }));
  t.regex(refused?.message ?? '', /is not a pigeonhole data directory layout/);
  t.true(existsSync(join(dir, 'salvaged-gen-2')), 'nothing was moved');
});

test('a first start that stopped after making its empty shard files, before its pigeonhole.json, is made again at the next', async (t) => {
  const dir = dataDir(t);
  createGeneration(dir, { format: FORMAT, shards: 2, generation: 1 });
  t.false(existsSync(join(dir, 'pigeonhole.json')));
  const warnings: string[] = [];
  const server = createServer({ shards: 3, dataDir: dir, logger: { ...silentLogger, warn: (_fields, message) => void warnings.push(message) } });
  t.teardown(() => server.close());
  const { port } = await server.listen({ port: 0 });
  t.regex(warnings.join('\n'), /gen-1\/ holds no message and there is no pigeonhole\.json .*: made again/);
  t.deepEqual(readdirSync(join(dir, 'gen-1')).filter((name) => name.endsWith('.db')).sort(), ['shard-0.db', 'shard-1.db', 'shard-2.db']);
  const client = await LineClient.connect(port);
  t.teardown(() => client.destroy());
  await client.send('LOGIN alice\nCOMPOSE alice\nhi\nREAD\n');
  t.deepEqual(await client.lines(4), ['0', 'MESSAGE SENT', 'alice', 'hi']);
});

test('a first start that stopped earlier (an empty gen-1/, a file of 0 bytes, a leftover journal) is made again too; one holding a message is not', async (t) => {
  for (const leftover of [[], ['shard-0.db'], ['shard-0.db', 'shard-0.db-journal']]) {
    const dir = dataDir(t);
    mkdirSync(join(dir, 'gen-1'));
    for (const name of leftover) writeFileSync(join(dir, 'gen-1', name), '');
    const server = createServer({ shards: 1, dataDir: dir, logger: silentLogger });
    await t.notThrowsAsync(server.listen({ port: 0 }), leftover.join(', ') || 'an empty gen-1/');
    await server.close();
    t.true(existsSync(join(dir, 'pigeonhole.json')));
  }
  // A message, even in a file whose layout is gone: not made again, and not touched.
  const dir = dataDir(t);
  createGeneration(dir, { format: FORMAT, shards: 1, generation: 1 });
  const db = new Database(join(dir, 'gen-1', 'shard-0.db'));
  db.prepare('INSERT INTO messages (recipient, sender, body) VALUES (?, ?, ?)').run('alice', 'bob', Buffer.from('hi'));
  db.close();
  const refused = await t.throwsAsync(createServer({ shards: 1, dataDir: dir, logger: silentLogger }).listen({ port: 0 }));
  t.is((refused as { code?: string }).code, 'PH_ERR_STORE_LAYOUT_MISMATCH');
  t.deepEqual(readdirSync(join(dir, 'gen-1')), ['shard-0.db']);
});

test('a shard file that does not belong to the layout, or a lost pigeonhole.json, stops the start', async (t) => {
  const dir = dataDir(t);
  await filled(dir, 10);
  copyFileSync(join(dir, 'gen-1', 'shard-0.db'), join(dir, 'gen-1', 'shard-2.db'));
  const server = createServer({ shards: 2, dataDir: dir, logger: silentLogger });
  const error = await t.throwsAsync(server.listen({ port: 0 }));
  t.is((error as { code?: string }).code, 'PH_ERR_STORE_LAYOUT_MISMATCH');
  t.regex(error?.message ?? '', /gen-1\/shard-2\.db is not a file of this 2-shard layout/);
  unlinkSync(join(dir, 'gen-1', 'shard-2.db'));

  unlinkSync(join(dir, 'pigeonhole.json'));
  const lost = createServer({ shards: 2, dataDir: dir, logger: silentLogger });
  const noLayout = await t.throwsAsync(lost.listen({ port: 0 }));
  t.is((noLayout as { code?: string }).code, 'PH_ERR_STORE_LAYOUT_MISMATCH');
  t.regex(noLayout?.message ?? '', /no pigeonhole\.json but holds gen-1\//);
  t.deepEqual(readdirSync(join(dir, 'gen-1')).sort(), ['shard-0.db', 'shard-1.db'], 'the generation was left alone');
  // check says how to mend the layout, not to salvage (salvage needs the layout).
  const wayOut = /write \{"format":1,"shards":N,"generation":1\} into .*pigeonhole\.json \(N: its number of shard files\)/;
  const checkLost = await runCli(t, ['check', '--data-dir', dir]);
  t.is(checkLost.code, 1, checkLost.stderr);
  t.regex(checkLost.stdout, wayOut);
  t.regex(checkLost.stdout, /the layout must be mended first: salvage needs it\n$/);

  // An unreadable one: the same way out, from the start and from check.
  writeFileSync(join(dir, 'pigeonhole.json'), 'not json');
  const garbled = await t.throwsAsync(createServer({ shards: 2, dataDir: dir, logger: silentLogger }).listen({ port: 0 }));
  t.regex(garbled?.message ?? '', /is not a pigeonhole data directory layout \(format 1\)\. If gen-1\/ is the data to serve, write/);
  const checkGarbled = await runCli(t, ['check', '--data-dir', dir]);
  t.is(checkGarbled.code, 1, checkGarbled.stderr);
  t.regex(checkGarbled.stdout, wayOut);
  t.notRegex(checkGarbled.stdout, /pigeonhole salvage/);
  // One from another version of pigeonhole is not to be overwritten: no such advice.
  writeFileSync(join(dir, 'pigeonhole.json'), '{"format":2,"shards":2,"generation":1}\n');
  const newer = await t.throwsAsync(createServer({ shards: 2, dataDir: dir, logger: silentLogger }).listen({ port: 0 }));
  t.regex(newer?.message ?? '', /is a layout of format 2, from another version of pigeonhole; this one reads format 1$/);
  const checkNewer = await runCli(t, ['check', '--data-dir', dir]);
  t.is(checkNewer.code, 1, checkNewer.stderr);
  t.notRegex(checkNewer.stdout, /write \{|must be mended|pigeonhole salvage/);
  // A file that is JSON but no object: a layout it is not, said as such.
  writeFileSync(join(dir, 'pigeonhole.json'), 'null');
  const checkNull = await runCli(t, ['check', '--data-dir', dir]);
  t.regex(checkNull.stdout, /is not a pigeonhole data directory layout \(format 1\)\. If gen-1\/ is the data to serve, write/);

  writeFileSync(join(dir, 'pigeonhole.json'), '{"format":1,"shards":2,"generation":1}\n');
  const back = createServer({ shards: 2, dataDir: dir, logger: silentLogger });
  t.teardown(() => back.close());
  await t.notThrowsAsync(back.listen({ port: 0 }));
});

test('a damaged file is not migrated: asked for another shard count, the start stops and the layout stays', async (t) => {
  const dir = dataDir(t);
  await filled(dir, 300);
  const file = join(dir, 'gen-1', 'shard-0.db');
  const page = middleTableLeaf(file);
  overwrite(file, page.offset + 1024, Buffer.alloc(512, 0xa5));
  const server = createServer({ shards: 3, dataDir: dir, logger: silentLogger });
  const error = await t.throwsAsync(server.listen({ port: 0 }));
  t.is((error as { code?: string }).code, 'PH_ERR_STORE_DAMAGED');
  t.true(error?.message.includes(file), error?.message);
  t.regex(error?.message ?? '', /the layout was not changed/);
  t.deepEqual(readdirSync(dir).filter((entry) => entry.startsWith('gen-')), ['gen-1']);
});
