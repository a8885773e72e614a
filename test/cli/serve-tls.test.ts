// `pigeonhole serve` with TLS and client certificates, driven by `send`, `read` and
// `client` with their --tls flags, and a certificate rotation through SIGHUP.
import { X509Certificate } from 'node:crypto';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { runCli } from '../helpers/cli.js';
import { makeTestCertificates } from '../helpers/certs.js';
import { compose } from '../helpers/line-client.js';
import { LEVEL, startServe, stopServe } from '../helpers/serve-cli.js';
import { connectTls } from '../helpers/tls.js';

const certs = makeTestCertificates();
test.after.always(() => certs.remove());

const serverTls = ['--tls-cert', certs.server.certFile, '--tls-key', certs.server.keyFile, '--tls-ca', certs.caFile];
const clientTls = (who: 'alice' | 'bob') => ['--tls-ca', certs.caFile, '--tls-cert', certs[who].certFile, '--tls-key', certs[who].keyFile];

test('send, read and client over TLS under the certificate names', async (t) => {
  const served = await startServe(t, ['--memory', '--shards', '0', '--port', '0', ...serverTls]);
  const port = ['--port', String(served.port)];
  const sent = await runCli(t, ['send', ...port, ...clientTls('alice'), '--from', 'alice', '--to', 'bob', 'Hi Bob!']);
  t.is(sent.code, 0, sent.stderr);
  t.is(sent.stdout, 'sent to bob\n');
  const [read, interactive] = await Promise.all([
    runCli(t, ['read', ...port, ...clientTls('bob'), '--user', 'bob']),
    runCli(t, ['client', ...port, ...clientTls('alice'), '--user', 'alice'], 'compose bob\nback at you\nexit\n'),
  ]);
  t.is(read.code, 0, read.stderr);
  t.is(read.stdout, 'alice: Hi Bob!\n');
  t.is(interactive.code, 0, interactive.stderr);
  t.is(interactive.stdout, 'logged in as alice: no messages waiting\nsent to bob\n');
  const { logs } = await stopServe(t, served);
  t.true(logs.some((line) => line.msg.startsWith('TLS on; client certificates required')));
  t.false(logs.some((line) => line.level === LEVEL.warn), 'loopback with client certificates: no warning');
});

test('another name than the certificate, no CA to verify the server, or plain TCP: exit 1, explained', async (t) => {
  const served = await startServe(t, ['--memory', '--shards', '0', '--port', '0', ...serverTls]);
  const port = ['--port', String(served.port)];
  const [impostor, untrusted, plain] = await Promise.all([
    runCli(t, ['send', ...port, ...clientTls('alice'), '--from', 'bob', '--to', 'alice', 'as bob']),
    // --tls trusts Node's public CAs only: the test CA is not one of them.
    runCli(t, ['read', ...port, '--tls', '--user', 'bob']),
    runCli(t, ['read', ...port, '--user', 'bob']),
  ]);
  t.is(impostor.code, 1);
  t.regex(impostor.stderr, /^pigeonhole: .*closed the connection before answering anything/);
  t.is(untrusted.code, 1);
  t.regex(untrusted.stderr, /^pigeonhole: the certificate of 127\.0\.0\.1:\d+ cannot be trusted/);
  t.is(plain.code, 1);
  t.regex(plain.stderr, /^pigeonhole: the server at 127\.0\.0\.1:\d+ closed the connection/);

  const { logs } = await stopServe(t, served);
  const refused = logs.find((line) => line.code === 'PH_ERR_PROTOCOL_IDENTITY_MISMATCH');
  t.is(refused?.level, LEVEL.warn);
  t.is(refused?.user, 'bob');
  t.is(refused?.certificate, 'alice');
  t.regex(String(refused?.remote), /^127\.0\.0\.1:\d+$/);
});

test('an unreadable certificate file stops serve with exit 1 and says which file', async (t) => {
  const result = await runCli(t, ['serve', '--memory', '--port', '0', '--tls-cert', join(certs.dir, 'missing.pem'), '--tls-key', certs.server.keyFile]);
  t.is(result.code, 1);
  t.regex(result.stderr, /^pigeonhole: cannot read the TLS certificate file .*missing\.pem: ENOENT/);
});

test('SIGHUP rereads the certificate files: new connections get the new one, open ones carry on, a broken file is logged and ignored', async (t) => {
  const certFile = join(certs.dir, `hup-${process.pid}.pem`);
  const keyFile = join(certs.dir, `hup-${process.pid}.key`);
  copyFileSync(certs.server.certFile, certFile);
  copyFileSync(certs.server.keyFile, keyFile);
  const served = await startServe(t, ['--memory', '--shards', '0', '--port', '0', '--tls-cert', certFile, '--tls-key', keyFile, '--tls-ca', certs.caFile]);
  const alice = { ca: certs.ca, cert: certs.alice.cert, key: certs.alice.key };
  const second = new X509Certificate(certs.server2.cert).fingerprint256;

  const before = await connectTls(t, served.port, alice);
  await before.send('LOGIN alice\n');
  t.deepEqual(await before.lines(1), ['0']);

  copyFileSync(certs.server2.certFile, certFile);
  copyFileSync(certs.server2.keyFile, keyFile);
  served.child.kill('SIGHUP');
  await served.waitForLog((line) => /TLS certificates reloaded/.test(line.msg), 'about the reload');
  const after = await connectTls(t, served.port, alice);
  t.is((after.socket as unknown as { getPeerCertificate(): { fingerprint256: string } }).getPeerCertificate().fingerprint256, second);
  await before.send(compose('alice', 'still here'));
  t.deepEqual(await before.lines(1), ['MESSAGE SENT']);

  writeFileSync(keyFile, 'garbage\n');
  served.child.kill('SIGHUP');
  const failed = await served.waitForLog((line) => /TLS reload failed/.test(line.msg), 'about the failed reload');
  t.is(failed.level, LEVEL.error);
  t.is(failed.code, 'PH_ERR_TLS_INVALID');
  const still = await connectTls(t, served.port, alice);
  await still.send('LOGIN alice\nREAD\n');
  t.deepEqual(await still.lines(3), ['1', 'alice', 'still here']);
  await stopServe(t, served);
});
