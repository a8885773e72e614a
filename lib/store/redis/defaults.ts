// The Redis store's defaults, apart from the store itself: options and the CLI read them
// without loading the Redis client, which only a server that uses Redis needs.

/** Keys start `<prefix>:{user}`. */
export const DEFAULT_KEY_PREFIX = 'ph';

/** How long `waitReplicas` waits for the replicas to confirm, in milliseconds. */
export const DEFAULT_WAIT_TIMEOUT_MS = 1_000;
