// Buffer#copy goes through a JavaScript wrapper that checks its arguments and makes a
// view before the native copy: for the short ranges of the hot path (a 64-byte message,
// a 13-byte reply) that costs more than the copy. Below this length a plain loop wins
// (measured with npm run bench:micro).
const LOOP_MAX = 32;

/** Copies source[start, end) into target at `at`; returns the number of bytes copied. */
export function copyBytes(source: Uint8Array, start: number, end: number, target: Uint8Array, at: number): number {
  const length = end - start;
  if (length <= LOOP_MAX) {
    for (let i = 0; i < length; i++) target[at + i] = source[start + i] as number;
  } else {
    target.set(source.subarray(start, end), at);
  }
  return length;
}
