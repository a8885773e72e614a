import { MAX_USERNAME_BYTES } from '../protocol/username.js';

// Bytes a connection's commands may hold in the server before it stops reading: the
// messages of COMPOSEs waiting for their shard, and the replies READs may bring. A READ's
// reply is unknown until the shard answers and can be a whole message (maxLineBytes) plus
// its sender, so each READ in flight counts as that much; counting commands alone let one
// client that never reads pin maxInFlight whole messages (64 MB by default) in memory.
export const IN_FLIGHT_BUDGET_BYTES = 4 * 1024 * 1024;
// A READ reply's bytes besides the message: the sender (a username) and two LFs.
export const READ_REPLY_OVERHEAD = MAX_USERNAME_BYTES + 2;

/**
 * The most reply bytes one connection can leave unwritten in the server: its in-flight
 * budget, passed by at most one READ's longest reply (it stops being read once its
 * socket queues more than that).
 */
export function mostRepliesHeld(maxLineBytes: number): number {
  return IN_FLIGHT_BUDGET_BYTES + maxLineBytes + READ_REPLY_OVERHEAD;
}
