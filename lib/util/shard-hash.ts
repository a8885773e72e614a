/** FNV-1a over bytes[start, end): cheap, well spread, and the same in every process and run. */
export function fnv1a(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let hash = 0x811c9dc5;
  for (let i = start; i < end; i++) hash = Math.imul(hash ^ (bytes[i] as number), 0x01000193);
  return hash >>> 0;
}

/**
 * The shard that owns a user's mailbox among `shards`: the name is name[start, end). Stored mailboxes are laid out by
 * this too, so it must never change without migrating data directories.
 */
export function shardIndex(name: Uint8Array, shards: number, start = 0, end = name.length): number {
  return shards === 1 ? 0 : fnv1a(name, start, end) % shards;
}
