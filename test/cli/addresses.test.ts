import test from 'ava';
import { hostPortFlag, isLoopback } from '../../lib/cli/addresses.js';
import { showAddress } from '../../lib/util/remote-address.js';
import { UsageError } from '../../lib/cli/flags.js';

test('loopback addresses are this machine only; any other address is reachable from a network', (t) => {
  for (const address of ['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1']) t.true(isLoopback(address), address);
  for (const address of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.2', '::ffff:10.1.1.1', 'fe80::1', '128.0.0.1']) t.false(isLoopback(address), address);
});

test('--metrics HOST:PORT, IPv6 in brackets', (t) => {
  t.deepEqual(hostPortFlag('metrics', '127.0.0.1:9100'), { host: '127.0.0.1', port: 9100 });
  t.deepEqual(hostPortFlag('metrics', '[::1]:0'), { host: '::1', port: 0 });
  t.deepEqual(hostPortFlag('metrics', 'localhost:9100'), { host: 'localhost', port: 9100 });
  for (const bad of ['9100', '127.0.0.1', ':9100', '::1:9100', 'host:70000', 'host:x']) t.throws(() => hostPortFlag('metrics', bad), { instanceOf: UsageError }, bad);
  t.is(showAddress('::1', 9100), '[::1]:9100');
  t.is(showAddress('127.0.0.1', 9100), '127.0.0.1:9100');
});
