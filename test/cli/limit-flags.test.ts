import test from 'ava';
import { UsageError, bytesFlag } from '../../lib/cli/flags.js';
import { limitOptions } from '../../lib/cli/limit-flags.js';
import { serve } from '../../lib/cli/serve.js';
import { OPTION_RANGES, REDIS_OPTION_RANGES } from '../../lib/options.js';

test('sizes take K, M and G (1024-based), in either case', (t) => {
  t.is(bytesFlag('x', '65536', 1, Number.MAX_SAFE_INTEGER), 65_536);
  t.is(bytesFlag('x', '64K', 1, Number.MAX_SAFE_INTEGER), 65_536);
  t.is(bytesFlag('x', '2m', 1, Number.MAX_SAFE_INTEGER), 2 * 1024 * 1024);
  t.is(bytesFlag('x', '1G', 1, Number.MAX_SAFE_INTEGER), 1024 ** 3);
  t.is(bytesFlag('x', undefined, 1, 2), undefined);
  for (const bad of ['', '1T', '-1', '1.5M', 'M', '1 M']) t.throws(() => bytesFlag('x', bad, 1, Number.MAX_SAFE_INTEGER), { instanceOf: UsageError }, bad);
  t.throws(() => bytesFlag('max-store-bytes', '10', 65_536, 100_000), { message: /--max-store-bytes must be from 65536 to 100000 bytes, got 10/ });
});

test('the limit flags become their server options; seconds become milliseconds', (t) => {
  t.deepEqual(
    limitOptions(
      { 'max-connections': '100', 'max-connections-per-ip': '0', 'max-connection-rate-per-ip': '20', 'line-timeout': '30', 'max-line-buffer': '16M', 'max-reply-buffer': '32M', 'max-store-bytes': '1G', 'min-free-disk': '512M' },
      'disk',
    ),
    {
      maxConnections: 100,
      maxConnectionsPerIp: 0,
      maxConnectionRatePerIp: 20,
      lineTimeoutMs: 30_000,
      maxLineBufferBytes: 16 * 1024 * 1024,
      maxReplyBufferBytes: 32 * 1024 * 1024,
      maxStoreBytes: 1024 ** 3,
      minFreeDiskBytes: 512 * 1024 * 1024,
    },
  );
  const none = limitOptions({}, 'memory');
  t.true(Object.values(none).every((value) => value === undefined), 'no flag, no option: the server picks its defaults');
});

test('bad limit flags are usage errors that name the flag', (t) => {
  t.throws(() => limitOptions({ 'line-timeout': 'soon' }, 'disk'), { instanceOf: UsageError, message: /--line-timeout must be a whole number/ });
  t.throws(() => limitOptions({ 'max-connections': '0' }, 'disk'), { instanceOf: UsageError, message: /--max-connections must be from 1/ });
  t.throws(() => limitOptions({ 'max-store-bytes': '10' }, 'disk'), { instanceOf: UsageError, message: /--max-store-bytes must be from 65536/ });
  t.throws(() => limitOptions({ 'min-free-disk': '1M' }, 'memory'), { instanceOf: UsageError, message: /--min-free-disk applies to on-disk storage; drop --memory/ });
});

test("with Redis, the flags for the server's own stores say so, rather than blaming --memory", (t) => {
  const minFree = t.throws(() => limitOptions({ 'min-free-disk': '1M' }, 'redis'), { instanceOf: UsageError });
  t.regex(minFree?.message ?? '', /--min-free-disk .*Redis/);
  t.notRegex(minFree?.message ?? '', /--memory/);
  t.throws(() => limitOptions({ 'max-store-bytes': '1M' }, 'redis'), { instanceOf: UsageError, message: /--max-store-bytes .*maxmemory in Redis/ });
});

test('every numeric flag of serve takes exactly the range of the option it sets', async (t) => {
  // [flag, the option's range, option units per flag unit]
  const flags: [string, readonly [number, number], number][] = [
    ['shards', OPTION_RANGES.shards, 1],
    ['acceptors', OPTION_RANGES.acceptors, 1],
    ['max-messages', OPTION_RANGES.maxMessagesPerUser, 1],
    ['max-line', OPTION_RANGES.maxLineBytes, 1],
    ['idle-timeout', OPTION_RANGES.idleTimeoutMs, 1000],
    ['max-in-flight', OPTION_RANGES.maxInFlight, 1],
    ['max-connections', OPTION_RANGES.maxConnections, 1],
    ['max-connections-per-ip', OPTION_RANGES.maxConnectionsPerIp, 1],
    ['max-connection-rate-per-ip', OPTION_RANGES.maxConnectionRatePerIp, 1],
    ['line-timeout', OPTION_RANGES.lineTimeoutMs, 1000],
    ['max-line-buffer', OPTION_RANGES.maxLineBufferBytes, 1],
    ['max-reply-buffer', OPTION_RANGES.maxReplyBufferBytes, 1],
    ['max-store-bytes', OPTION_RANGES.maxStoreBytes, 1],
    ['min-free-disk', OPTION_RANGES.minFreeDiskBytes, 1],
    ['redis-wait', REDIS_OPTION_RANGES.waitReplicas, 1],
    ['redis-wait-timeout', REDIS_OPTION_RANGES.waitTimeoutMs, 1],
  ];
  for (const [flag, [low, high], unit] of flags) {
    const min = Math.ceil(low / unit);
    const max = Math.floor(high / unit);
    const outside = min > 0 ? [min - 1, max + 1] : [max + 1];
    for (const value of outside) {
      // Refused while the flags are read, before anything starts.
      const error = await t.throwsAsync(serve([`--${flag}`, String(value)], {}), { instanceOf: UsageError }, `--${flag} ${value}`);
      t.regex(error?.message ?? '', new RegExp(`^--${flag} must be from ${min} to ${max}\\b`), `--${flag} ${value}`);
    }
  }
});
