// The client library over TLS against a real server on 127.0.0.1: verified both ways,
// and every way it can fail typed and explained.
import test from 'ava';
import { connect } from '../../lib/client/index.js';
import { ClientClosedError, ClientError, InvalidOptionError } from '../../lib/errors.js';
import { makeTestCertificates } from '../helpers/certs.js';
import { startServer } from '../helpers/server.js';

const certs = makeTestCertificates();
test.after.always(() => certs.remove());

const mtls = { certFile: certs.server.certFile, keyFile: certs.server.keyFile, caFile: certs.caFile };

test('connect({ tls }) with a client certificate: login, compose and read as the certificate name', async (t) => {
  const { port } = await startServer(t, { tls: mtls });
  const alice = await connect({ port, tls: { ca: certs.ca, cert: certs.alice.cert, key: certs.alice.key } });
  t.teardown(() => alice.close());
  // Pipelined as usual over TLS.
  const [count, sent] = await Promise.all([alice.login('alice'), alice.compose('alice', 'über TLS')]);
  t.is(count, 0);
  t.true(sent);
  t.deepEqual(await alice.read(), { from: 'alice', message: 'über TLS', raw: Buffer.from('über TLS') });
  await alice.exit();
  t.is(await alice.closed, null);
});

test('a server certificate the client cannot verify is PH_ERR_CLIENT_TLS_UNTRUSTED, from connect()', async (t) => {
  const { port } = await startServer(t, { tls: mtls });
  // tls: true trusts only Node's public CAs, which did not sign the test certificate.
  const unknown = await t.throwsAsync(connect({ port, tls: true }), { instanceOf: ClientError });
  t.is(unknown?.code, 'PH_ERR_CLIENT_TLS_UNTRUSTED');
  t.regex(unknown?.message ?? '', /cannot be trusted.*SELF_SIGNED_CERT_IN_CHAIN.*tls\.ca/);
  // Signed by the right CA, but not for this name.
  const elsewhere = await t.throwsAsync(connect({ port, tls: { ca: certs.ca, servername: 'mail.example.com' } }), { instanceOf: ClientError });
  t.is(elsewhere?.code, 'PH_ERR_CLIENT_TLS_UNTRUSTED');
  t.regex(elsewhere?.message ?? '', /ERR_TLS_CERT_ALTNAME_INVALID/);
});

test('no client certificate for a server that requires one: the first call says so (PH_ERR_CLIENT_TLS_REJECTED as its cause)', async (t) => {
  const { port } = await startServer(t, { tls: mtls });
  let err: unknown;
  try {
    // TLS 1.3: the server's refusal arrives after the handshake, so connect() may resolve.
    const client = await connect({ port, tls: { ca: certs.ca } });
    t.teardown(() => client.close());
    err = await client.login('alice').then(
      () => null,
      (e: unknown) => e,
    );
  } catch (e) {
    err = e;
  }
  const rejected = err instanceof ClientClosedError ? (err.cause as ClientError) : (err as ClientError);
  t.true(rejected instanceof ClientError, String(err));
  t.is(rejected.code, 'PH_ERR_CLIENT_TLS_REJECTED');
  t.regex(rejected.message, /requires a client certificate/);
});

test("a certificate from another CA, or a LOGIN that is not the certificate's name: the connection closes with a hint", async (t) => {
  const { port } = await startServer(t, { tls: mtls });
  const foreign = await connect({ port, tls: { ca: certs.ca, cert: certs.foreign.cert, key: certs.foreign.key } });
  t.teardown(() => foreign.close());
  const refused = await t.throwsAsync(foreign.login('alice'), { instanceOf: ClientClosedError });
  t.regex(refused?.message ?? '', /before answering anything.*client certificates/);

  const impostor = await connect({ port, tls: { ca: certs.ca, cert: certs.alice.cert, key: certs.alice.key } });
  t.teardown(() => impostor.close());
  const dropped = await t.throwsAsync(impostor.login('bob'), { instanceOf: ClientClosedError });
  t.regex(dropped?.message ?? '', /LOGIN other than the name in the certificate/);
});

test('tls against a plain server fails with PH_ERR_CLIENT_CONNECT_FAILED, bounded by timeoutMs', async (t) => {
  const { port } = await startServer(t);
  const err = await t.throwsAsync(connect({ port, tls: { ca: certs.ca }, timeoutMs: 1_500 }), { instanceOf: ClientError });
  t.is(err?.code, 'PH_ERR_CLIENT_CONNECT_FAILED');
});

test('bad tls options are refused before connecting', async (t) => {
  const bad: unknown[] = [{ cert: certs.alice.cert }, { key: certs.alice.key }, { ca: 42 }, { ca: [] }, { servername: '' }, { passphrase: 1 }, 'yes'];
  for (const tls of bad) {
    const err = await t.throwsAsync(connect({ port: 1, tls: tls as never }), { instanceOf: InvalidOptionError }, JSON.stringify(tls));
    t.regex(err?.message ?? '', /tls/);
  }
  await t.throwsAsync(connect({ port: 1, tls: { certs: 'x' } as never }), { code: 'PH_ERR_OPTION_UNKNOWN' });
});
