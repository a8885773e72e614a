/** PROTOCOL: a username is 1 to 256 bytes, each a visible ASCII character 0x21-0x7E. */
export const MAX_USERNAME_BYTES = 256;

export function isValidUsername(bytes: Uint8Array, start = 0, end = bytes.length): boolean {
  const length = end - start;
  if (length < 1 || length > MAX_USERNAME_BYTES) return false;
  for (let i = start; i < end; i++) {
    const b = bytes[i] as number;
    if (b < 0x21 || b > 0x7e) return false;
  }
  return true;
}

/** Why a username is refused, in words for a person; null when it is fine. */
export function usernameProblem(name: string | Uint8Array): string | null {
  const bytes = typeof name === 'string' ? Buffer.from(name, 'utf8') : name;
  if (bytes.length === 0) return 'a username cannot be empty';
  if (bytes.length > MAX_USERNAME_BYTES) return `a username is at most ${MAX_USERNAME_BYTES} bytes (this one is ${bytes.length})`;
  for (const b of bytes) {
    if (b === 0x20) return 'a username cannot contain a space';
    if (b < 0x21 || b > 0x7e) return 'a username may only use visible ASCII characters (no spaces, tabs, control or non-ASCII characters)';
  }
  return null;
}
