/**
 * What the server and the client agree on unless told otherwise: the service's address
 * and the line limit. Both sides import these, so `pigeonhole serve` and
 * `pigeonhole send` meet without a flag.
 */
export const DEFAULT_PORT = 4000;
/** The server is reachable from a network only when asked. */
export const DEFAULT_HOST = '127.0.0.1';

/** PROTOCOL: the longest line, LF (and a CR before it) not counted. */
export const DEFAULT_MAX_LINE_BYTES = 65_536;
// The shortest line limit that still fits every command with the longest username:
// `COMPOSE ` and 256 name bytes.
export const MIN_MAX_LINE_BYTES = 264;
// Replies carry lengths as u32 and a message must fit in one reply batch comfortably.
export const MAX_MAX_LINE_BYTES = 16 * 1024 * 1024;
