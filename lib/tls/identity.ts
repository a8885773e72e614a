import type { TLSSocket } from 'node:tls';

/**
 * The subject CN of the certificate a client presented, which its LOGIN must name; null
 * when the client presented none, its certificate did not verify, or the subject has no
 * single CN (none, or several: no one name to bind to).
 */
export function certificateName(socket: TLSSocket): string | null {
  if (!socket.authorized) return null;
  const cn: unknown = socket.getPeerCertificate().subject?.CN;
  return typeof cn === 'string' && cn.length > 0 ? cn : null;
}
