import { InvalidOptionError } from '../errors.js';
import { checkOptionNames } from '../util/check-options.js';
import { type Pem, isPem, isPemOrList } from './files.js';

/**
 * TLS for connect(). The server is verified against `ca` when given, otherwise against
 * Node's built-in list of public CAs (plus NODE_EXTRA_CA_CERTS). `cert` and `key` are the
 * client's certificate, for a server that requires one (`--tls-ca` on the server).
 */
export interface ClientTlsOptions {
  /** The CA(s) the server's certificate must be signed by, PEM. */
  ca?: Pem | Pem[];
  /** This client's certificate, PEM: its subject CN is the one name it may LOGIN as. */
  cert?: Pem;
  key?: Pem;
  passphrase?: string;
  /** The name the server's certificate must carry, if not the host connected to. */
  servername?: string;
}

const KNOWN = ['ca', 'cert', 'key', 'passphrase', 'servername'];

/** Checks connect()'s `tls` option: `true` (or {}) for TLS with the default CAs. */
export function resolveClientTls(tls: unknown): ClientTlsOptions | null {
  if (tls === undefined || tls === false) return null;
  if (tls === true) return {};
  checkOptionNames(tls, KNOWN, 'connect() tls');
  const options = tls as ClientTlsOptions;
  const { ca, cert, key, passphrase, servername } = options;
  if (ca !== undefined && !isPemOrList(ca)) {
    throw new InvalidOptionError('invalid tls.ca: expected PEM text (a string or a Buffer), or a list of them');
  }
  if (cert !== undefined && !isPem(cert)) throw new InvalidOptionError('invalid tls.cert: expected PEM text (a string or a Buffer)');
  if (key !== undefined && !isPem(key)) throw new InvalidOptionError('invalid tls.key: expected PEM text (a string or a Buffer)');
  if ((cert === undefined) !== (key === undefined)) throw new InvalidOptionError('tls.cert and tls.key go together: give both or neither');
  if (passphrase !== undefined && typeof passphrase !== 'string') throw new InvalidOptionError('invalid tls.passphrase: expected a string');
  if (servername !== undefined && (typeof servername !== 'string' || servername.length === 0)) {
    throw new InvalidOptionError('invalid tls.servername: expected a host name');
  }
  return { ca, cert, key, passphrase, servername };
}
