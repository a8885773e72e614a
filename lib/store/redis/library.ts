import { ErrorReply } from '@redis/client';

/**
 * The server-side half of COMPOSE: "append if the mailbox holds fewer than max", as one
 * atomic step however many pigeonhole nodes write to the mailbox at once. READ (LPOP)
 * and LOGIN (LLEN) are single Redis commands, atomic already.
 *
 * A function library rather than an EVALSHA script: Redis keeps functions in its RDB and
 * AOF and replicates them, so they survive a restart and a failover, where the script
 * cache is empty after either. The library's name carries its version, so nodes of two
 * versions can share a cluster during a rolling upgrade without replacing each other's
 * code. Functions need Redis 7 or later (or Valkey).
 */
export const LIBRARY_NAME = 'pigeonhole_1';
export const COMPOSE_FUNCTION = 'pigeonhole_1_compose';

// KEYS[1] the mailbox, ARGV[1] the most messages it may hold, ARGV[2] the record.
// Answers 0 when full (nothing written), else the mailbox's new length.
export const LIBRARY_CODE = `#!lua name=${LIBRARY_NAME}
redis.register_function('${COMPOSE_FUNCTION}', function(keys, args)
  if redis.call('LLEN', keys[1]) >= tonumber(args[1]) then
    return 0
  end
  return redis.call('RPUSH', keys[1], args[2])
end)
`;

/**
 * The node has no such function (a new master, a wiped node). Redis refuses the call
 * before running anything, so loading the library and calling again cannot store twice.
 */
export function isFunctionMissing(err: unknown): boolean {
  return err instanceof ErrorReply && /^ERR Function not found/i.test(err.message);
}
