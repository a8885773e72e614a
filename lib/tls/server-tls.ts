import { type SecureContextOptions, createSecureContext } from 'node:tls';
import { InvalidOptionError, TlsError, errorMessage } from '../errors.js';
import { checkOptionNames } from '../util/check-options.js';
import { type Pem, type TlsPart, isPem, isPemOrList, readTlsFile, readTlsFileSync } from './files.js';
import { TLS_MIN_VERSION } from './version.js';

/**
 * The server's TLS material. Each of the certificate, the key and the CA is given either
 * as PEM (`cert`, `key`, `ca`, as node:tls takes them) or as a file (`certFile`, ...).
 * Files are read again by a reload, so certificates can rotate under a running server.
 */
export interface ServerTlsOptions {
  /** The server's certificate chain, PEM. */
  cert?: Pem;
  certFile?: string;
  /** The certificate's private key, PEM. */
  key?: Pem;
  keyFile?: string;
  /**
   * With a CA, clients must present a certificate signed by it, and LOGIN must name the
   * certificate's subject CN. Without one, any client may log in as anyone.
   */
  ca?: Pem | Pem[];
  caFile?: string;
  /** For an encrypted key. */
  passphrase?: string;
}

type Source = { readonly file: string } | { readonly pem: Pem | Pem[] };

/** Checked TLS options: where each part comes from. */
export interface ResolvedServerTls {
  readonly cert: Source;
  readonly key: Source;
  readonly ca: Source | null;
  readonly passphrase: string | undefined;
}

const KNOWN = ['cert', 'certFile', 'key', 'keyFile', 'ca', 'caFile', 'passphrase'];

function source(options: ServerTlsOptions, part: 'cert' | 'key' | 'ca', required: boolean): Source | null {
  const fileName = `${part}File` as const;
  const pem = options[part];
  const file = options[fileName];
  if (pem !== undefined && file !== undefined) throw new InvalidOptionError(`tls.${part} and tls.${fileName} exclude each other: give one`);
  if (file !== undefined) {
    if (typeof file !== 'string' || file.length === 0) throw new InvalidOptionError(`invalid tls.${fileName}: expected a file path`);
    return { file };
  }
  if (pem !== undefined) {
    const ok = part === 'ca' ? isPemOrList(pem) : isPem(pem);
    if (!ok) throw new InvalidOptionError(`invalid tls.${part}: expected PEM text (a string or a Buffer)${part === 'ca' ? ', or a list of them' : ''}`);
    return { pem };
  }
  if (required) throw new InvalidOptionError(`tls needs the server's ${part === 'cert' ? 'certificate' : 'private key'}: give tls.${part} or tls.${fileName}`);
  return null;
}

/** Checks the shape of `createServer({ tls })` at the door; reads nothing yet. */
export function resolveServerTls(options: unknown): ResolvedServerTls {
  checkOptionNames(options, KNOWN, 'tls');
  const tls = options as ServerTlsOptions;
  if (tls.passphrase !== undefined && typeof tls.passphrase !== 'string') throw new InvalidOptionError('invalid tls.passphrase: expected a string');
  return {
    cert: source(tls, 'cert', true) as Source,
    key: source(tls, 'key', true) as Source,
    ca: source(tls, 'ca', false),
    passphrase: tls.passphrase,
  };
}

const PART: Record<'cert' | 'key' | 'ca', TlsPart> = { cert: 'certificate', key: 'key', ca: 'CA' };

function contextOptions(tls: ResolvedServerTls, read: (source: Source, part: 'cert' | 'key' | 'ca') => Pem | Pem[]): SecureContextOptions {
  const options: SecureContextOptions = {
    cert: read(tls.cert, 'cert') as Pem,
    key: read(tls.key, 'key') as Pem,
    passphrase: tls.passphrase,
    minVersion: TLS_MIN_VERSION,
  };
  if (tls.ca !== null) options.ca = read(tls.ca, 'ca');
  // Built once here so that a bad key, a key that does not match its certificate or a
  // wrong passphrase is a typed error now, not an exception inside the TLS server later.
  try {
    createSecureContext(options);
  } catch (err) {
    throw new TlsError('PH_ERR_TLS_INVALID', `the TLS certificate, key or CA cannot be used: ${errorMessage(err)}`, { cause: err });
  }
  return options;
}

/** The secure context options for the TLS server, files read now (at start). */
export function loadServerTls(tls: ResolvedServerTls): SecureContextOptions {
  return contextOptions(tls, (src, part) => ('file' in src ? readTlsFileSync(src.file, PART[part]) : src.pem));
}

/** The same, files read without blocking: for a reload while connections are served. */
export async function reloadServerTls(tls: ResolvedServerTls): Promise<SecureContextOptions> {
  const files = new Map<string, Buffer>();
  for (const part of ['cert', 'key', 'ca'] as const) {
    const src = tls[part];
    if (src !== null && 'file' in src) files.set(part, await readTlsFile(src.file, PART[part]));
  }
  return contextOptions(tls, (src, part) => ('file' in src ? (files.get(part) as Buffer) : src.pem));
}
