// `pigeonhole serve` for an operator: configuration from the environment, the metrics
// endpoint, log levels and formats, and the warning when anyone could be anyone.
import { request } from 'node:http';
import test from 'ava';
import { runCli, startCli } from '../helpers/cli.js';
import { makeTestCertificates } from '../helpers/certs.js';
import { LineClient } from '../helpers/line-client.js';
import { LEVEL, startServe, stopServe } from '../helpers/serve-cli.js';
import { HOST } from '../helpers/server.js';
import { connectTls } from '../helpers/tls.js';

const certs = makeTestCertificates();
test.after.always(() => certs.remove());

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { timeout: 20_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

test('every setting from PIGEONHOLE_* (TLS, metrics, log level), a flag on the command line winning', async (t) => {
  const served = await startServe(t, ['--host', HOST], {
    // Not a usable address: if the environment won over --host, the server could not listen.
    PIGEONHOLE_HOST: '203.0.113.7',
    PIGEONHOLE_PORT: '0',
    PIGEONHOLE_SHARDS: '0',
    PIGEONHOLE_MEMORY: '1',
    PIGEONHOLE_TLS_CERT: certs.server.certFile,
    PIGEONHOLE_TLS_KEY: certs.server.keyFile,
    PIGEONHOLE_TLS_CA: certs.caFile,
    PIGEONHOLE_METRICS: `${HOST}:0`,
    PIGEONHOLE_LOG_LEVEL: 'debug',
    PIGEONHOLE_TLS_CERTS: 'a typo',
  });
  t.is(served.host, HOST);
  // TLS with client certificates, from the environment alone.
  const plain = await LineClient.connect(served.port);
  await plain.send('LOGIN alice\n');
  t.false(/^\d+\n/.test((await plain.waitClosed()).trailing.toString('latin1')));
  const alice = await connectTls(t, served.port, { ca: certs.ca, cert: certs.alice.cert, key: certs.alice.key });
  await alice.send('LOGIN alice\n');
  t.deepEqual(await alice.lines(1), ['0']);

  const announced = await served.waitForLog((line) => typeof line.url === 'string', 'with the metrics address');
  const url = String(announced.url);
  t.regex(url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
  const metrics = await get(url);
  t.is(metrics.status, 200);
  t.regex(metrics.body, /^pigeonhole_commands_total\{command="login"\} 1$/m);
  t.regex(metrics.body, /^pigeonhole_connections_rejected_total\{reason="tls_handshake"\} 1$/m);
  t.deepEqual(await get(url.replace('/metrics', '/healthz')), { status: 200, body: 'ok\n' });

  const { logs } = await stopServe(t, served);
  t.true(logs.some((line) => line.level === LEVEL.warn && line.msg === 'PIGEONHOLE_TLS_CERTS is not an option of pigeonhole serve; ignored'));
  // Debug level: the plain client's failed handshake is logged.
  t.true(logs.some((line) => line.level === LEVEL.debug && /TLS handshake failed/.test(line.msg)));
});

test('listening beyond loopback without client certificates logs a warning; --log-format pretty writes readable lines', async (t) => {
  const open = await startServe(t, ['--memory', '--shards', '0', '--port', '0', '--host', '0.0.0.0']);
  t.is(open.host, '0.0.0.0');
  const { logs } = await stopServe(t, open);
  const warning = logs.find((line) => line.level === LEVEL.warn);
  t.regex(warning?.msg ?? '', /^listening on 0\.0\.0\.0 without TLS or client certificates: anyone who can reach it may LOGIN as any user.*clear text/);
  t.is(warning?.address, '0.0.0.0');

  const tlsOnly = startCli(t, ['serve', '--memory', '--shards', '0', '--port', '0', '--host', '0.0.0.0', '--log-format', 'pretty', '--tls-cert', certs.server.certFile, '--tls-key', certs.server.keyFile]);
  await tlsOnly.waitForStdout('\n');
  tlsOnly.child.kill('SIGTERM');
  const pretty = await tlsOnly.result;
  t.is(pretty.code, 0, pretty.stderr);
  t.regex(pretty.stderr, /^pigeonhole: warning: listening on 0\.0\.0\.0 with TLS but without client certificates \(--tls-ca\): anyone who can reach it may LOGIN as any user/m);
  t.regex(pretty.stderr, /^pigeonhole: closed\n$/m);
});

test('--log-level warn keeps the routine lines out', async (t) => {
  const quiet = await startServe(t, ['--memory', '--shards', '0', '--port', '0', '--log-level', 'warn']);
  quiet.child.kill('SIGTERM');
  const result = await quiet.result;
  t.is(result.code, 0);
  t.is(result.stderr, '');
});

// The flag parsers have unit tests (env, log, addresses); these check the wiring, lean.
const USAGE_ERRORS: [string[], NodeJS.ProcessEnv, RegExp][] = [
  [['--tls-ca', 'ca.pem'], {}, /--tls-ca needs --tls-cert and --tls-key/],
  [['--metrics', '9100'], {}, /--metrics must be HOST:PORT/],
  [[], { PIGEONHOLE_PORT: 'x' }, /--port must be a whole number, got 'x' \(from PIGEONHOLE_PORT in the environment\)/],
];

for (const [args, env, reason] of USAGE_ERRORS) {
  test(`usage error: serve ${args.join(' ')} ${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ')}`, async (t) => {
    const result = await runCli(t, ['serve', '--memory', ...args], '', env);
    t.is(result.code, 2, result.stderr);
    t.regex(result.stderr, reason);
    t.regex(result.stderr, /\nRun 'pigeonhole serve --help' for usage\.\n$/);
  });
}
