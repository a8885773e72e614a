import test from 'ava';
import { pino } from 'pino';
import { logFormatFlag, logLevelFlag, prettyLine } from '../../lib/cli/log.js';
import { UsageError } from '../../lib/cli/flags.js';

test('a pino line reads on a terminal as prose with its fields, level named when not info', (t) => {
  const labels = pino.levels.labels;
  const base = { time: 1, pid: 2, hostname: 'h', name: 'pigeonhole' };
  t.is(prettyLine(JSON.stringify({ ...base, level: 30, msg: 'listening on 127.0.0.1:4000', address: '127.0.0.1:4000' }), labels), 'pigeonhole: listening on 127.0.0.1:4000 (address=127.0.0.1:4000)\n');
  t.is(prettyLine(JSON.stringify({ ...base, level: 40, msg: 'shard 1 is back', shard: 1, restarts: 2 }), labels), 'pigeonhole: warning: shard 1 is back (shard=1 restarts=2)\n');
  t.is(prettyLine(JSON.stringify({ ...base, level: 50, msg: 'disk full', code: 'PH_ERR_STORE_WRITE_FAILED' }), labels), 'pigeonhole: ERROR: disk full (code=PH_ERR_STORE_WRITE_FAILED)\n');
  t.is(prettyLine(JSON.stringify({ ...base, level: 20, msg: 'TLS handshake failed' }), labels), 'pigeonhole: debug: TLS handshake failed\n');
});

test('--log-level and --log-format take only their words', (t) => {
  t.is(logLevelFlag(undefined), 'info');
  t.is(logLevelFlag('debug'), 'debug');
  t.is(logFormatFlag(undefined), 'auto');
  t.is(logFormatFlag('json'), 'json');
  t.regex(t.throws(() => logLevelFlag('loud'), { instanceOf: UsageError })?.message ?? '', /--log-level must be one of fatal, error, warn, info, debug, trace, silent; got 'loud'/);
  t.throws(() => logFormatFlag('xml'), { instanceOf: UsageError });
});
