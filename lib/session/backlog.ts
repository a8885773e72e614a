// Past this many bytes in flight on one acceptor thread (the messages of COMPOSEs, and
// what READs are expected to bring back), its shards are backed up, and each connection
// gets a fair share of the mark: one that already has its share in flight is not read
// again until its replies come. Without it, a few connections pipelining big messages,
// in or out, queued megabytes ahead of everyone else's commands (each may hold
// IN_FLIGHT_BUDGET_BYTES), and a user sending one small command waited for all of it.
// Redis gets the same from serving each client one read per round.
export const BACKLOGGED_BYTES = 1024 * 1024;
// The least share: one big message and a bit, however many connections there are.
export const MIN_FAIR_SHARE_BYTES = 64 * 1024;
// How much of the gap to each READ reply the thread's estimate closes: a 64th.
const READ_ESTIMATE_STEP = 64;

/**
 * The bytes in flight (commands whose replies are not yet written) on every connection
 * of one acceptor thread: COMPOSEs' messages, and READs' replies as each connection's
 * recent ones let expect them (see ReplyQueue.reserve). Also how many connections have
 * some. Each connection's ReplyQueue keeps them current.
 */
export class Backlog {
  bytes = 0;
  connections = 0;
  /**
   * The size READ replies have had lately on the whole thread: where a new connection's
   * own estimate starts, so that a client cannot have its first READs counted as nothing
   * by opening a new connection for each burst.
   */
  readEstimate = 0;

  /** A READ reply of `bytes` was written on one of the thread's connections. */
  readReplied(bytes: number): void {
    this.readEstimate = movedToward(this.readEstimate, bytes, READ_ESTIMATE_STEP);
  }

  /**
   * Whether a connection with `own` bytes in flight must wait for its replies
   * before sending more: while the thread is backed up, once it holds its share (the
   * mark split between the connections holding any, so that together they keep the
   * shards busy).
   */
  holdsBack(own: number): boolean {
    return own >= MIN_FAIR_SHARE_BYTES && this.bytes >= BACKLOGGED_BYTES && own * this.connections >= BACKLOGGED_BYTES;
  }
}

/** A READ estimate moved a `step`th of the way to a reply of `bytes` (whole bytes). */
export function movedToward(estimate: number, bytes: number, step: number): number {
  return estimate + Math.trunc((bytes - estimate) / step);
}
