// Certificates for TLS tests and the TLS benchmark, made with openssl in a temporary
// folder: a CA, a server certificate for localhost and 127.0.0.1, client certificates
// for two users, one from a foreign CA, and one that names no user.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A certificate and its key, as files and as PEM. */
export interface CertificatePair {
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: Buffer;
  readonly key: Buffer;
}

export interface TestCertificates {
  readonly dir: string;
  /** The CA that signs the server's and the users' certificates. */
  readonly caFile: string;
  readonly ca: Buffer;
  /** For localhost and 127.0.0.1, signed by the CA. */
  readonly server: CertificatePair;
  /** Another server certificate from the same CA, to rotate to. */
  readonly server2: CertificatePair;
  /** Subject CN=alice and CN=bob, signed by the CA. */
  readonly alice: CertificatePair;
  readonly bob: CertificatePair;
  /** CN=alice, signed by a CA the server does not trust. */
  readonly foreign: CertificatePair;
  /** Signed by the CA, with no CN in its subject. */
  readonly nameless: CertificatePair;
  /** Removes the folder. */
  remove(): void;
}

// EC P-256: a key takes a millisecond to make, an RSA key tens of them.
const NEW_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000 });
}

function makeCa(dir: string, name: string, subject: string): void {
  openssl(dir, ['req', '-x509', ...NEW_KEY, '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', subject]);
}

function makeLeaf(dir: string, name: string, ca: string, subject: string, extensions: string[]): CertificatePair {
  const exts = ['basicConstraints=critical,CA:FALSE', ...extensions].flatMap((ext) => ['-addext', ext]);
  openssl(dir, ['req', '-x509', ...NEW_KEY, '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', subject, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, ...exts]);
  const certFile = join(dir, `${name}.pem`);
  const keyFile = join(dir, `${name}.key`);
  return { certFile, keyFile, cert: readFileSync(certFile), key: readFileSync(keyFile) };
}

/** Makes the whole set in a new temporary folder (remove() it when done). */
export function makeTestCertificates(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'pigeonhole-certs-'));
  try {
    makeCa(dir, 'ca', '/CN=pigeonhole test CA');
    makeCa(dir, 'foreign-ca', '/CN=some other CA');
    const server = ['subjectAltName=DNS:localhost,IP:127.0.0.1', 'extendedKeyUsage=serverAuth'];
    const client = ['extendedKeyUsage=clientAuth'];
    return {
      dir,
      caFile: join(dir, 'ca.pem'),
      ca: readFileSync(join(dir, 'ca.pem')),
      server: makeLeaf(dir, 'server', 'ca', '/CN=localhost', server),
      server2: makeLeaf(dir, 'server2', 'ca', '/CN=localhost', server),
      alice: makeLeaf(dir, 'alice', 'ca', '/CN=alice', client),
      bob: makeLeaf(dir, 'bob', 'ca', '/CN=bob', client),
      foreign: makeLeaf(dir, 'foreign', 'foreign-ca', '/CN=alice', client),
      nameless: makeLeaf(dir, 'nameless', 'ca', '/O=pigeonhole test', client),
      remove: () => rmSync(dir, { recursive: true, force: true }),
    };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
