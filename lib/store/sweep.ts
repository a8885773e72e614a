// When a map of entries that fall unused (emptied mailboxes, senders no message names any
// more) is swept: never for a few, and only once the unused are half of it, so each sweep
// drops at least as many entries as it walks past (amortized O(1) per entry), and an
// entry that is used again soon is not deleted and made again each time.
const SWEEP_AT = 1024;

/** After an entry fell unused: whether the map is due a sweep. */
export function sweepDue(unused: number, size: number): boolean {
  return unused > SWEEP_AT && unused * 2 > size;
}

/** At a store's cap: whether a sweep now, few unused or not, frees enough to be worth it. */
export function worthSweepingAtCap(unused: number, size: number): boolean {
  return unused > 0 && unused * 2 >= size;
}
