import { fnv1a } from '../util/shard-hash.js';

/**
 * Turns username bytes into strings, reusing the string made last time for the same
 * bytes. A shard looks each name up in its mailbox map; a fresh string per command costs
 * an allocation, a copy and a rehash in the map, while a reused string keeps its hash.
 * Names are ASCII, so latin1 decoding is exact and one byte is one character.
 *
 * One entry per hash value; a collision simply replaces the entry. The cache is cleared
 * when it reaches `capacity` names, which bounds its memory.
 */
export class NameCache {
  readonly #names = new Map<number, string>();
  readonly #capacity: number;

  constructor(capacity = 65_536) {
    this.#capacity = capacity;
  }

  get(bytes: Buffer, start: number, end: number): string {
    const hash = fnv1a(bytes, start, end);
    const cached = this.#names.get(hash);
    if (cached !== undefined && sameBytes(cached, bytes, start, end)) return cached;
    const name = bytes.toString('latin1', start, end);
    if (this.#names.size >= this.#capacity) this.#names.clear();
    this.#names.set(hash, name);
    return name;
  }
}

function sameBytes(name: string, bytes: Buffer, start: number, end: number): boolean {
  if (name.length !== end - start) return false;
  for (let i = 0; i < name.length; i++) if (name.charCodeAt(i) !== bytes[start + i]) return false;
  return true;
}
