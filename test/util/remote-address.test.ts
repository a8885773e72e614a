import test from 'ava';
import { limitKey, showAddress } from '../../lib/util/remote-address.js';

test('per-address limits count IPv4 peers by address, IPv4-mapped ones unmapped, and IPv6 peers by their /64', (t) => {
  t.is(limitKey('203.0.113.7'), '203.0.113.7');
  t.is(limitKey('::ffff:203.0.113.7'), '203.0.113.7');
  t.is(limitKey('::FFFF:203.0.113.7'), '203.0.113.7');
  // One /64, however its addresses are written.
  const one = ['2001:db8:1:2::1', '2001:db8:1:2:ffff:ffff:ffff:ffff', '2001:0db8:0001:0002:0:0:0:9', '2001:DB8:1:2::a:b'];
  t.deepEqual(new Set(one.map(limitKey)), new Set(['2001:db8:1:2::/64']));
  t.is(limitKey('2001:db8:1:3::1'), '2001:db8:1:3::/64', 'the next /64 is another');
  t.is(limitKey('2001:db8::1'), '2001:db8:0:0::/64');
  t.is(limitKey('::1'), '0:0:0:0::/64');
  // IPv4 clients of an IPv6-only server through NAT64 are each their own IPv4 address.
  t.is(limitKey('64:ff9b::192.0.2.1'), '192.0.2.1');
  t.is(limitKey('64:ff9b::c000:202'), '192.0.2.2');
  t.is(limitKey('::ffff:c000:203'), '192.0.2.3');
  t.is(limitKey('64:ff9b:1::192.0.2.1'), '64:ff9b:1:0::/64', 'not the well-known /96');
  t.is(limitKey('fe80::1%eth0'), 'fe80:0:0:0::/64', 'with a zone');
});

test('addresses are shown with IPv6 in brackets', (t) => {
  t.is(showAddress('127.0.0.1', 4000), '127.0.0.1:4000');
  t.is(showAddress('::1', 4000), '[::1]:4000');
});
