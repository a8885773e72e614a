/** FNV-1a over the name's bytes: cheap, well spread, and the same in every process and run. */
export function hashName(name: Uint8Array): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    hash ^= name[i] as number;
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/**
 * The shard that owns a user's mailbox among `shards`. Stored mailboxes are laid out by
 * this too, so it must never change without migrating data directories.
 */
export function shardIndex(name: Uint8Array, shards: number): number {
  return shards === 1 ? 0 : hashName(name) % shards;
}
