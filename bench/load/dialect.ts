import type { DialectCommands, ReplyParser } from './reply.js';
import { PigeonholeReplyParser, pigeonholeCommands } from './pigeonhole-dialect.js';
import { RedisReplyParser, redisCommands } from './redis-dialect.js';
import type { DialectName } from './types.js';

export function commandsFor(dialect: DialectName): DialectCommands {
  return dialect === 'redis' ? redisCommands : pigeonholeCommands;
}

export function parserFor(dialect: DialectName): ReplyParser {
  return dialect === 'redis' ? new RedisReplyParser() : new PigeonholeReplyParser();
}
