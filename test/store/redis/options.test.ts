import test from 'ava';
import { InvalidOptionError } from '../../../lib/errors.js';
import { type ServerOptions, resolveOptions } from '../../../lib/options.js';

const INVALID = { instanceOf: InvalidOptionError, code: 'PH_ERR_OPTION_INVALID' } as const;
const untyped = (value: unknown): ServerOptions => value as ServerOptions;

test('redis: a URL or a seed list, with the wait settings defaulted', (t) => {
  t.deepEqual(resolveOptions({ redis: { url: 'redis://127.0.0.1:6379' } }).redis, { target: { url: 'redis://127.0.0.1:6379' }, waitReplicas: 0, waitTimeoutMs: 1000, keyPrefix: 'ph' });
  t.deepEqual(resolveOptions({ redis: { url: 'rediss://user:secret@cache.example:6380/2' } }).redis?.target, { url: 'rediss://user:secret@cache.example:6380/2' });
  const seeds = ['127.0.0.1:7000', 'redis-a:7001', '[::1]:7002'];
  t.deepEqual(resolveOptions({ redis: { cluster: seeds, waitReplicas: 1, waitTimeoutMs: 50, keyPrefix: 'mail.v2' } }).redis, { target: { cluster: seeds }, waitReplicas: 1, waitTimeoutMs: 50, keyPrefix: 'mail.v2' });
  t.is(resolveOptions({}).redis, undefined, 'no redis: the memory store');
});

test('redis: a bad value throws PH_ERR_OPTION_INVALID naming what is wrong', (t) => {
  const bad: [unknown, RegExp][] = [
    [{}, /either url .* or cluster/],
    [{ url: 'redis://a:1', cluster: ['a:1'] }, /not both/],
    [{ url: '127.0.0.1:6379' }, /redis\.url/],
    [{ url: 'http://a:1' }, /redis\.url/],
    [{ url: 42 }, /redis\.url/],
    [{ cluster: [] }, /redis\.cluster/],
    [{ cluster: '127.0.0.1:7000' }, /redis\.cluster/],
    [{ cluster: ['127.0.0.1'] }, /redis\.cluster node "127\.0\.0\.1"/],
    [{ cluster: ['127.0.0.1:0'] }, /redis\.cluster node/],
    [{ cluster: ['127.0.0.1:65536'] }, /redis\.cluster node/],
    [{ cluster: ['a b:1'] }, /redis\.cluster node/],
    [{ url: 'redis://a:1', waitReplicas: -1 }, /redis\.waitReplicas/],
    [{ url: 'redis://a:1', waitReplicas: 1.5 }, /redis\.waitReplicas/],
    [{ url: 'redis://a:1', waitTimeoutMs: 0 }, /redis\.waitTimeoutMs/],
    [{ url: 'redis://a:1', keyPrefix: '' }, /redis\.keyPrefix/],
    [{ url: 'redis://a:1', keyPrefix: 'a{b}' }, /redis\.keyPrefix/],
    [{ url: 'redis://a:1', keyPrefix: 'x'.repeat(65) }, /redis\.keyPrefix/],
    ['redis://a:1', /redis options must be an object/],
  ];
  for (const [redis, message] of bad) {
    const err = t.throws(() => resolveOptions(untyped({ redis })), INVALID, JSON.stringify(redis));
    t.regex(err?.message ?? '', message, JSON.stringify(redis));
  }
});

test('redis: an unknown field is named, and redis excludes dataDir', (t) => {
  t.regex(t.throws(() => resolveOptions(untyped({ redis: { url: 'redis://a:1', wait: 1 } })), { code: 'PH_ERR_OPTION_UNKNOWN' })?.message ?? '', /'wait', did you mean 'waitReplicas'/);
  t.regex(t.throws(() => resolveOptions({ redis: { url: 'redis://a:1' }, dataDir: 'data' }), INVALID)?.message ?? '', /redis and dataDir/);
});

test("redis: fsync and minFreeDiskBytes are refused as pigeonhole's disk settings, not with advice to add dataDir", (t) => {
  for (const extra of [{ fsync: true }, { minFreeDiskBytes: 1024 }] as const) {
    const message = t.throws(() => resolveOptions({ redis: { url: 'redis://a:1' }, ...extra }), INVALID)?.message ?? '';
    t.regex(message, /with redis, Redis's persistence settings/);
    t.notRegex(message, /give dataDir/);
  }
  t.is(resolveOptions({ redis: { url: 'redis://a:1' }, fsync: false }).fsync, false, 'fsync: false asks for nothing');
});
