import type { CounterTotals, ReplyTotals, SessionTotals } from '../metrics/registry.js';
import { LIMIT_FIELDS, type LimitCounts, noLimitCounts } from '../session/connection-guard.js';
import { REJECT_REASONS, type RejectReason } from '../session/counters.js';
import type { SessionAcceptor } from './acceptor.js';

/** An acceptor's counters now, as plain data that can cross a port (or be kept). */
export function totalsOf(acceptor: SessionAcceptor): CounterTotals {
  const session = acceptor.counters;
  const replies = acceptor.router.counters;
  return {
    session: {
      accepted: session.accepted,
      rejected: { ...session.rejected },
      login: session.login,
      compose: session.compose,
      read: session.read,
      exit: session.exit,
      bytesIn: session.bytesIn,
      bytesOut: session.bytesOut,
      protocolErrors: new Map(session.protocolErrors),
    },
    limits: { ...acceptor.guard.counts },
    replies: {
      loginCount: replies.loginCount,
      messageSent: replies.messageSent,
      messageFailed: replies.messageFailed,
      readMessage: replies.readMessage,
      readError: replies.readError,
      aborted: replies.aborted,
      stalls: replies.stalls,
    },
    openConnections: acceptor.open,
  };
}

const SESSION_NUMBERS = ['accepted', 'login', 'compose', 'read', 'exit', 'bytesIn', 'bytesOut'] as const satisfies readonly (keyof SessionTotals)[];
const REPLY_NUMBERS = ['loginCount', 'messageSent', 'messageFailed', 'readMessage', 'readError', 'aborted', 'stalls'] as const satisfies readonly (keyof ReplyTotals)[];

/**
 * Several acceptors' counters added up. `limits` is taken as it is from `sharedLimits`
 * when given: with several threads those counts already live in shared memory, summed.
 */
export function sumTotals(parts: readonly CounterTotals[], sharedLimits?: LimitCounts): CounterTotals {
  const session = { accepted: 0, login: 0, compose: 0, read: 0, exit: 0, bytesIn: 0, bytesOut: 0 };
  const rejected = Object.fromEntries(REJECT_REASONS.map((reason) => [reason, 0])) as Record<RejectReason, number>;
  const protocolErrors = new Map<string, number>();
  const replies = { loginCount: 0, messageSent: 0, messageFailed: 0, readMessage: 0, readError: 0, aborted: 0, stalls: 0 };
  const limits = noLimitCounts();
  let openConnections = 0;
  for (const part of parts) {
    for (const key of SESSION_NUMBERS) session[key] += part.session[key];
    for (const reason of REJECT_REASONS) rejected[reason] += part.session.rejected[reason];
    for (const [code, count] of part.session.protocolErrors) protocolErrors.set(code, (protocolErrors.get(code) ?? 0) + count);
    for (const key of REPLY_NUMBERS) replies[key] += part.replies[key];
    for (const key of LIMIT_FIELDS) limits[key] += part.limits[key];
    openConnections += part.openConnections;
  }
  return { session: { ...session, rejected, protocolErrors }, limits: sharedLimits ?? limits, replies, openConnections };
}
