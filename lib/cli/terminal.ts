/** What the CLI prints to a terminal: colours (when wanted) and safely shown messages. */
export interface Style {
  name(text: string): string;
  good(text: string): string;
  bad(text: string): string;
  dim(text: string): string;
}

// https://no-color.org: NO_COLOR set to any non-empty value turns colour off.
export function colourWanted(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv): boolean {
  return stream.isTTY === true && (env.NO_COLOR === undefined || env.NO_COLOR === '');
}

/** Plain ANSI rather than util.styleText: on Node 20 styleText colours whatever the stream. */
export function createStyle(colour: boolean): Style {
  const sgr = (open: number, close: number) => (text: string) => (colour ? `\x1b[${open}m${text}\x1b[${close}m` : text);
  return { name: sgr(36, 39), good: sgr(32, 39), bad: sgr(31, 39), dim: sgr(2, 22) };
}

/**
 * A message's text for a terminal: control characters would let a sender move the
 * cursor, recolour or retitle the reader's terminal, so they are shown escaped there.
 * Elsewhere (a pipe, a file) the text goes out as it is.
 */
export function printable(text: string, terminal: boolean): string {
  if (!terminal) return text;
  return text.replace(/[\x00-\x08\x0a-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
