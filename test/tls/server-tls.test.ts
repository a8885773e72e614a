// The server over real TLS on 127.0.0.1: LOGIN bound to the client certificate's CN,
// connections without a valid certificate kept from the protocol, certificate reloads
// that leave open connections alone, and handle() on sockets the host accepted.
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import { TlsError } from '../../lib/errors.js';
import { type Logger, silentLogger } from '../../lib/logger.js';
import { createServer } from '../../lib/server.js';
import { makeTestCertificates } from '../helpers/certs.js';
import { LineClient, compose, until } from '../helpers/line-client.js';
import { HOST, forEachShards, handOver, startServer } from '../helpers/server.js';
import { connectTls, tryTls } from '../helpers/tls.js';

const certs = makeTestCertificates();
test.after.always(() => certs.remove());

const mtls = { certFile: certs.server.certFile, keyFile: certs.server.keyFile, caFile: certs.caFile };
const as = (pair: { cert: Buffer; key: Buffer }) => ({ ca: certs.ca, cert: pair.cert, key: pair.key });

interface Logged {
  level: string;
  fields: Record<string, unknown>;
  message: string;
}

function recordingLogger(): { logger: Logger; lines: Logged[] } {
  const lines: Logged[] = [];
  const at = (level: string) => (fields: Record<string, unknown>, message: string) => void lines.push({ level, fields, message });
  return { logger: { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') }, lines };
}

/** The value of one sample of the server's metrics, 0 when absent. */
async function metric(server: { metrics: { metrics(): Promise<string> } }, sample: string): Promise<number> {
  const text = await server.metrics.metrics();
  const line = text.split('\n').find((row) => row.startsWith(`${sample} `));
  return line === undefined ? 0 : Number(line.slice(sample.length + 1));
}

forEachShards(test, 'with a CA, LOGIN as the certificate CN works and mail flows between certified users', async (t, shards) => {
  const { port } = await startServer(t, { shards, tls: mtls });
  const alice = await connectTls(t, port, as(certs.alice));
  await alice.send(Buffer.concat([Buffer.from('LOGIN alice\n'), compose('bob', 'Hi Bob, from alice')]));
  t.deepEqual(await alice.lines(2), ['0', 'MESSAGE SENT']);
  const bob = await connectTls(t, port, as(certs.bob));
  await bob.send('LOGIN bob\nREAD\nEXIT\n');
  t.deepEqual(await bob.lines(3), ['1', 'alice', 'Hi Bob, from alice']);
  await bob.waitClosed();
});

test('LOGIN under another name than the certificate CN drops the connection, sends nothing, and is logged', async (t) => {
  const { logger, lines } = recordingLogger();
  const { server, port } = await startServer(t, { tls: mtls, logger });
  const alice = await connectTls(t, port, as(certs.alice));
  // Pipelined: nothing after the refused LOGIN may run either.
  await alice.send(Buffer.concat([Buffer.from('LOGIN bob\nREAD\n'), compose('carol', 'as bob')]));
  const closed = await alice.waitClosed();
  t.is(closed.trailing.length, 0);
  t.is(alice.bytesReceived, 0, 'no reply, no error text');

  const warning = lines.find((line) => line.fields.code === 'PH_ERR_PROTOCOL_IDENTITY_MISMATCH');
  t.is(warning?.level, 'warn');
  t.is(warning?.fields.user, 'bob');
  t.is(warning?.fields.certificate, 'alice');
  t.is(warning?.fields.remote, `${HOST}:${alice.socket.localPort}`);
  t.is(await metric(server, 'pigeonhole_protocol_errors_total{code="PH_ERR_PROTOCOL_IDENTITY_MISMATCH"}'), 1);
  // Nothing reached carol's mailbox, and bob's READ did not run.
  const carol = await connectTls(t, port, as(certs.bob));
  await carol.send('LOGIN bob\n');
  t.deepEqual(await carol.lines(1), ['0']);
  t.is(await metric(server, 'pigeonhole_commands_total{command="compose"}'), 0);
  t.is(await metric(server, 'pigeonhole_commands_total{command="read"}'), 0);
});

test('no certificate, one from a foreign CA, one without a CN, and plain TCP never reach the protocol', async (t) => {
  const { logger, lines } = recordingLogger();
  const { server, port } = await startServer(t, { tls: mtls, logger });
  const refusedTls = [
    ['no certificate', { ca: certs.ca }],
    // The foreign certificate even names alice: the name alone is worth nothing.
    ['a foreign CA', as(certs.foreign)],
    ['no CN', as(certs.nameless)],
  ] as const;
  for (const [what, options] of refusedTls) {
    const attempt = await tryTls(t, port, options);
    // Over TLS 1.3 the client finishes its side of the handshake before the server has
    // judged its certificate: it may send, but must get nothing back.
    if (attempt.client !== null) {
      await attempt.client.send('LOGIN alice\n').catch(() => {});
      const closed = await attempt.client.waitClosed();
      t.is(closed.trailing.length, 0, what);
      t.is(attempt.client.bytesReceived, 0, what);
    } else {
      t.truthy(attempt.error, what);
    }
  }

  const plain = await LineClient.connect(port);
  await plain.send('LOGIN alice\n');
  const closed = await plain.waitClosed();
  // The TLS server may answer a record of its own (an alert); never a protocol reply.
  t.false(/^(\d+|MESSAGE|READ)/.test(closed.trailing.toString('latin1')), JSON.stringify(closed.trailing.toString('latin1')));
  t.true(closed.trailing.length === 0 || closed.trailing[0] === 0x15, 'nothing, or a TLS alert record');

  // Three failed handshakes (no certificate, foreign CA, plain TCP), one certificate naming nobody.
  await until(async () => (await metric(server, 'pigeonhole_connections_rejected_total{reason="tls_handshake"}')) === 3, 'three handshakes are counted as failed');
  t.is(await metric(server, 'pigeonhole_connections_rejected_total{reason="no_identity"}'), 1);
  t.is(await metric(server, 'pigeonhole_connections_accepted_total'), 0);
  t.is(await metric(server, 'pigeonhole_commands_total{command="login"}'), 0);
  t.true(lines.some((line) => line.level === 'warn' && /names no user/.test(line.message)));
  t.true(lines.some((line) => line.level === 'debug' && /TLS handshake failed/.test(line.message)));
});

test('a TLS client that sends its commands and half-closes still gets every reply', async (t) => {
  const { port } = await startServer(t, { tls: mtls });
  const alice = await connectTls(t, port, as(certs.alice));
  alice.socket.end(Buffer.concat([Buffer.from('LOGIN alice\n'), compose('alice', 'note to self'), Buffer.from('READ\n')]));
  t.deepEqual(await alice.lines(4), ['0', 'MESSAGE SENT', 'alice', 'note to self']);
  await alice.waitClosed();
});

test('without a CA, TLS only encrypts: any client may LOGIN under any name', async (t) => {
  const { port } = await startServer(t, { tls: { certFile: certs.server.certFile, keyFile: certs.server.keyFile } });
  for (const user of ['alice', 'bob']) {
    const client = await connectTls(t, port, { ca: certs.ca });
    await client.send(`LOGIN ${user}\n`);
    t.deepEqual(await client.lines(1), ['0'], user);
  }
});

test('TLS older than 1.2 is refused', async (t) => {
  const { port } = await startServer(t, { tls: mtls });
  // SECLEVEL=0 lets this client offer TLS 1.1 at all; the server must still say no.
  const attempt = await tryTls(t, port, { ...as(certs.alice), minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' });
  t.is(attempt.client, null);
  t.regex(attempt.error?.code ?? '', /PROTOCOL|VERSION/);
});

function fingerprint(socket: { getPeerCertificate(): { fingerprint256: string } }): string {
  return socket.getPeerCertificate().fingerprint256;
}

test('reloadTls() rereads the files: new connections get the new certificate, open ones carry on, a bad file changes nothing', async (t) => {
  const certFile = join(certs.dir, `reload-${process.pid}.pem`);
  const keyFile = join(certs.dir, `reload-${process.pid}.key`);
  copyFileSync(certs.server.certFile, certFile);
  copyFileSync(certs.server.keyFile, keyFile);
  const { server, port } = await startServer(t, { tls: { certFile, keyFile, caFile: certs.caFile } });
  const first = new X509Certificate(certs.server.cert).fingerprint256;
  const second = new X509Certificate(certs.server2.cert).fingerprint256;
  t.not(first, second);

  const before = await connectTls(t, port, as(certs.alice));
  await before.send('LOGIN alice\n');
  t.deepEqual(await before.lines(1), ['0']);
  t.is(fingerprint(before.socket as never), first);

  copyFileSync(certs.server2.certFile, certFile);
  copyFileSync(certs.server2.keyFile, keyFile);
  await server.reloadTls();
  const after = await connectTls(t, port, as(certs.bob));
  t.is(fingerprint(after.socket as never), second);
  // The connection made before the reload is still served.
  await before.send(compose('bob', 'across a reload'));
  t.deepEqual(await before.lines(1), ['MESSAGE SENT']);
  await after.send('LOGIN bob\nREAD\n');
  t.deepEqual(await after.lines(3), ['1', 'alice', 'across a reload']);

  writeFileSync(certFile, 'not a certificate\n');
  const bad = await t.throwsAsync(server.reloadTls(), { instanceOf: TlsError });
  t.is(bad?.code, 'PH_ERR_TLS_INVALID');
  const missing = await t.throwsAsync(server.reloadTls({ certFile: join(certs.dir, 'nowhere.pem'), keyFile, caFile: certs.caFile }), { instanceOf: TlsError });
  t.is(missing?.code, 'PH_ERR_TLS_FILE_UNREADABLE');
  t.regex(missing?.message ?? '', /nowhere\.pem/);
  const still = await connectTls(t, port, as(certs.alice));
  t.is(fingerprint(still.socket as never), second, 'a failed reload keeps the certificate in use');
  // A reload cannot turn client certificates off: requestCert is fixed when the server starts.
  await t.throwsAsync(server.reloadTls({ certFile, keyFile }), { code: 'PH_ERR_OPTION_INVALID' });
});

test('handle() runs the TLS handshake and the identity rule on sockets the host accepted', async (t) => {
  const server = createServer({ shards: 0, logger: silentLogger, tls: mtls });
  t.teardown(() => server.close());
  const { port } = await handOver(t, server);
  const alice = await connectTls(t, port, as(certs.alice));
  await alice.send('LOGIN alice\n');
  t.deepEqual(await alice.lines(1), ['0']);
  const impostor = await connectTls(t, port, as(certs.alice));
  await impostor.send('LOGIN bob\n');
  await impostor.waitClosed();
  t.is(impostor.bytesReceived, 0);
  const noCertificate = await tryTls(t, port, { ca: certs.ca });
  if (noCertificate.client !== null) {
    await noCertificate.client.send('LOGIN alice\n').catch(() => {});
    await noCertificate.client.waitClosed();
    t.is(noCertificate.client.bytesReceived, 0);
  }
});

function throwsTls(t: ExecutionContext, tls: object, code: TlsError["code"], pattern: RegExp): void {
  const err = t.throws(() => createServer({ shards: 0, logger: silentLogger, tls }), { instanceOf: TlsError });
  t.is(err?.code, code);
  t.regex(err?.message ?? '', pattern);
}

test('createServer() reads the certificate files at once: unreadable or unusable ones are typed errors', (t) => {
  throwsTls(t, { certFile: join(certs.dir, 'missing.pem'), keyFile: certs.server.keyFile }, 'PH_ERR_TLS_FILE_UNREADABLE', /certificate file .*missing\.pem/);
  throwsTls(t, { cert: certs.server.cert, keyFile: join(certs.dir, 'missing.key') }, 'PH_ERR_TLS_FILE_UNREADABLE', /key file/);
  // A key that is not the certificate's.
  throwsTls(t, { cert: certs.server.cert, key: certs.alice.key }, 'PH_ERR_TLS_INVALID', /cannot be used/);
  throwsTls(t, { cert: 'not PEM', key: certs.server.key }, 'PH_ERR_TLS_INVALID', /cannot be used/);
});

test('maxConnectionRatePerIp refuses over TLS before the handshake, so a peer opening connections fast costs no handshakes', async (t) => {
  const { server, port } = await startServer(t, { tls: mtls, maxConnectionRatePerIp: 1 });
  const alice = await connectTls(t, port, as(certs.alice));
  const refused = await tryTls(t, port, as(certs.bob));
  t.is(refused.client, null, 'the second connection in a second gets no handshake');
  await until(() => server.limitCounts.refusedRatePerIp === 1, 'the refusal is counted');
  t.is(await metric(server, 'pigeonhole_connections_rejected_total{reason="max_connection_rate_per_ip"}'), 1);
  t.is(await metric(server, 'pigeonhole_connections_rejected_total{reason="tls_handshake"}'), 0, 'no handshake was begun, so none failed');
  await alice.send('LOGIN alice\n');
  t.deepEqual(await alice.lines(1), ['0']);
});

test('connection limits hold over TLS: counted from the TCP connection, before any handshake, and given back on close', async (t) => {
  const { server, port } = await startServer(t, { tls: mtls, maxConnections: 2 });
  const first = await connectTls(t, port, as(certs.alice));
  // A client that never starts its handshake still holds its place.
  const silent = await LineClient.connect(port);
  t.teardown(() => silent.destroy());
  const refused = await tryTls(t, port, as(certs.bob));
  t.is(refused.client, null, 'a third connection gets no handshake');
  await until(() => server.limitCounts.refusedConnections === 1, 'the refusal is counted');
  t.is(await metric(server, 'pigeonhole_connections_rejected_total{reason="max_connections"}'), 1);
  // Places come back as connections close, TLS or not.
  first.destroy();
  silent.destroy();
  await until(async () => (await tryTls(t, port, as(certs.bob))).client !== null, 'a new connection is let in');
  const bob = await connectTls(t, port, as(certs.bob));
  await bob.send('LOGIN bob\n');
  t.deepEqual(await bob.lines(1), ['0']);
});
