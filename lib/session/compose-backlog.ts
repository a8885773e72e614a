// Past this many message bytes of COMPOSEs in flight on one acceptor thread, its shards
// are backed up, and each connection gets a fair share: one that already has
// FAIR_SHARE_BYTES in flight is not read again until its replies come. Without it, a few
// connections pipelining big messages queued megabytes ahead of everyone else's commands
// (each may hold IN_FLIGHT_BUDGET_BYTES), and a user sending one small command waited for
// all of it. Redis gets the same from serving each client one read per round.
export const BACKLOGGED_BYTES = 1024 * 1024;
export const FAIR_SHARE_BYTES = 64 * 1024;

/**
 * The message bytes of COMPOSEs in flight (their replies not yet written) on every
 * connection of one acceptor thread. Each connection's ReplyQueue keeps it current.
 */
export class ComposeBacklog {
  bytes = 0;

  /** Whether a connection with `own` COMPOSE bytes in flight must wait for replies before sending more. */
  holdsBack(own: number): boolean {
    return own >= FAIR_SHARE_BYTES && this.bytes >= BACKLOGGED_BYTES;
  }
}
