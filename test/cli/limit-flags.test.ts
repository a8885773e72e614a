import test from 'ava';
import { UsageError, bytesFlag } from '../../lib/cli/flags.js';
import { limitOptions } from '../../lib/cli/limit-flags.js';

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
      { 'max-connections': '100', 'max-connections-per-ip': '0', 'line-timeout': '30', 'max-line-buffer': '16M', 'max-store-bytes': '1G', 'min-free-disk': '512M' },
      true,
    ),
    {
      maxConnections: 100,
      maxConnectionsPerIp: 0,
      lineTimeoutMs: 30_000,
      maxLineBufferBytes: 16 * 1024 * 1024,
      maxStoreBytes: 1024 ** 3,
      minFreeDiskBytes: 512 * 1024 * 1024,
    },
  );
  const none = limitOptions({}, false);
  t.true(Object.values(none).every((value) => value === undefined), 'no flag, no option: the server picks its defaults');
});

test('bad limit flags are usage errors that name the flag', (t) => {
  t.throws(() => limitOptions({ 'line-timeout': 'soon' }, true), { instanceOf: UsageError, message: /--line-timeout must be a whole number/ });
  t.throws(() => limitOptions({ 'max-connections': '0' }, true), { instanceOf: UsageError, message: /--max-connections must be from 1/ });
  t.throws(() => limitOptions({ 'max-store-bytes': '10' }, true), { instanceOf: UsageError, message: /--max-store-bytes must be from 65536/ });
  t.throws(() => limitOptions({ 'min-free-disk': '1M' }, false), { instanceOf: UsageError, message: /--min-free-disk applies to on-disk storage/ });
});
