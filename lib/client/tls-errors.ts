import { ClientError } from '../errors.js';

// OpenSSL's reasons for not trusting a server's certificate, as Node reports them in
// `err.code`, and Node's own for a certificate that names another host.
const UNTRUSTED = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_REVOKED',
  'CERT_SIGNATURE_FAILURE',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

// TLS alerts a server sends when it does not accept the client's certificate (or wanted
// one and got none). Over TLS 1.3 they arrive after the handshake, on the first read.
const REJECTED = new Set([
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN',
  'ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED',
  'ERR_SSL_TLSV1_ALERT_ACCESS_DENIED',
  'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE',
]);

/**
 * A typed, explained error for a TLS failure talking to `where`, or null when `err` is
 * not about certificates (a refused or reset connection, say).
 */
export function tlsFailure(err: Error & { code?: string; reason?: string }, where: string): ClientError | null {
  const code = err.code ?? '';
  // OpenSSL's message carries its source file and line; its reason is the readable part.
  const reason = `${err.reason ?? err.message} (${code})`;
  if (UNTRUSTED.has(code)) {
    return new ClientError(
      'PH_ERR_CLIENT_TLS_UNTRUSTED',
      `the certificate of ${where} cannot be trusted: ${reason}. Give the CA that signed it (tls.ca, --tls-ca FILE), and connect by a name the certificate carries`,
      { cause: err },
    );
  }
  if (code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED') {
    return new ClientError(
      'PH_ERR_CLIENT_TLS_REJECTED',
      `${where} requires a client certificate and none was given: ${reason}. Give one signed by its CA with tls.cert and tls.key (--tls-cert, --tls-key)`,
      { cause: err },
    );
  }
  if (REJECTED.has(code)) {
    return new ClientError(
      'PH_ERR_CLIENT_TLS_REJECTED',
      `${where} refused the TLS handshake, most likely this client's certificate (or the lack of one): ${reason}. It takes only certificates signed by its CA (tls.cert and tls.key, --tls-cert, --tls-key)`,
      { cause: err },
    );
  }
  return null;
}
