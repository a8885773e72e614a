import { Writable } from 'node:stream';
import test from 'ava';
import { pino } from 'pino';
import { type Logger, lineLogger, withFields } from '../lib/logger.js';
import { createServer, kShardBackend } from '../lib/server.js';
import type { WorkerShards } from '../lib/shards/worker-shards.js';
import { until } from './helpers/line-client.js';

test('lineLogger hands a message-only logger one line of text per call, fields written out', (t) => {
  const lines: string[] = [];
  const target = { info: (line: string) => lines.push(`I ${line}`), warn: (line: string) => lines.push(`W ${line}`), error: (line: string) => lines.push(`E ${line}`) };
  const logger = lineLogger(target);
  logger.info({ shard: 1 }, 'shard 1 is back');
  logger.warn({ code: 'PH_ERR_X', remote: '127.0.0.1:5' }, 'careful');
  logger.error({}, 'plain');
  t.deepEqual(lines, ['I shard 1 is back (shard=1)', 'W careful (code=PH_ERR_X remote=127.0.0.1:5)', 'E plain']);
  t.is(logger.debug, undefined, 'no debug on the target, none on the adapter');
  const withDebug = lineLogger({ ...target, debug: (line: string) => lines.push(`D ${line}`) });
  withDebug.debug?.({ code: 'ECONNRESET' }, 'handshake');
  t.is(lines.at(-1), 'D handshake (code=ECONNRESET)');
});

test('withFields adds its fields to every level, debug included when the logger has it', (t) => {
  const seen: unknown[] = [];
  const base: Logger = { info: () => {}, warn: () => {}, error: () => {}, debug: (fields, message) => seen.push([fields, message]) };
  withFields(base, { shard: 3 }).debug?.({ code: 'X' }, 'm');
  t.deepEqual(seen, [[{ shard: 3, code: 'X' }, 'm']]);
  t.is(withFields({ info() {}, warn() {}, error() {} }, { shard: 1 }).debug, undefined);
});

test('a pino logger is taken as it is: a shard crash arrives as a JSON line with its code and shard', async (t) => {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const server = createServer({ shards: 1, logger: pino({ level: 'info' }, sink) });
  t.teardown(() => server.close());
  await server.listen({ host: '127.0.0.1', port: 0 });
  await (server[kShardBackend] as WorkerShards).terminate(0);
  await until(() => lines.some((line) => line.code === 'PH_ERR_SHARD_CRASHED'), 'the crash is logged');
  const crash = lines.find((line) => line.code === 'PH_ERR_SHARD_CRASHED');
  t.is(crash?.level, 50);
  t.is(crash?.shard, 0);
  t.regex(String(crash?.msg), /restarting it/);
});
