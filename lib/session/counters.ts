/**
 * Why a connection was turned away before it reached the protocol:
 *   'tls_handshake'  the TLS handshake failed (no client certificate, one from another
 *                    CA, a client not speaking TLS, a handshake that timed out)
 *   'no_identity'    the client certificate verified but names no usable user (its
 *                    subject CN is missing, repeated, or not a valid username)
 *   'closing'        the server was closing
 */
export type RejectReason = 'tls_handshake' | 'no_identity' | 'closing';

export const REJECT_REASONS: readonly RejectReason[] = ['tls_handshake', 'no_identity', 'closing'];

/**
 * What the connections of one server did, for metrics: plain numbers bumped on the hot
 * path (a field increment costs next to nothing) and read by the metrics registry only
 * when it is scraped.
 */
export class SessionCounters {
  accepted = 0;
  readonly rejected: Record<RejectReason, number> = { tls_handshake: 0, no_identity: 0, closing: 0 };
  login = 0;
  compose = 0;
  read = 0;
  exit = 0;
  /** Protocol bytes taken from clients and written to them (inside TLS when TLS is on). */
  bytesIn = 0;
  bytesOut = 0;
  /** Protocol errors by code (the connection was dropped for each). */
  readonly protocolErrors = new Map<string, number>();

  protocolError(code: string): void {
    this.protocolErrors.set(code, (this.protocolErrors.get(code) ?? 0) + 1);
  }
}
