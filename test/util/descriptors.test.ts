import test from 'ava';
import { connectionsFor, descriptorLimit } from '../../lib/util/descriptors.js';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            1024                 524288               files
Max locked memory         8388608              8388608              bytes
`;

test('the soft descriptor limit is read from /proc/self/limits', (t) => {
  t.is(descriptorLimit(LIMITS), 1024);
  t.is(descriptorLimit(LIMITS.replace('1024   ', 'unlimited')), 1_048_576);
  t.is(descriptorLimit('nothing here'), null);
});

test('connections leave a tenth of the descriptors, at least 128, for the server itself', (t) => {
  t.is(connectionsFor(1024), 896);
  t.is(connectionsFor(20_000), 18_000);
  t.is(connectionsFor(200), 72);
  t.is(connectionsFor(100), 1, 'never below one');
  t.is(connectionsFor(null), 896, 'an unknown limit is taken as 1024');
});
