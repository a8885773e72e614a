/**
 * An address's counter in each of the two rows of a count-min sketch of `buckets`
 * counters a row: FNV-1a under the first seed, then that hash mixed under the second, so
 * two addresses that share one counter rarely share the other.
 */
export function addressBuckets(key: string, seedA: number, seedB: number, buckets: number): [number, number] {
  let hash = 0x811c9dc5 ^ seedA;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
  return [(hash >>> 0) % buckets, buckets + (mix(hash ^ seedB) % buckets)];
}

/** MurmurHash3's finalizer: every bit of the input moves every bit of the output. */
function mix(value: number): number {
  let h = value;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
