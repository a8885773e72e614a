import test from 'ava';
import type { LogFields, Logger } from '../../lib/logger.js';
import { type LogClock, RateLimitedLog } from '../../lib/util/rate-limited-log.js';

/** A clock moved by hand, whose timers fire when it passes them. */
class HandClock implements LogClock {
  time = 0;
  readonly #timers: { at: number; fn: () => void; live: boolean }[] = [];
  now(): number {
    return this.time;
  }
  after(ms: number, fn: () => void): () => void {
    const timer = { at: this.time + ms, fn, live: true };
    this.#timers.push(timer);
    return () => (timer.live = false);
  }
  advance(ms: number): void {
    this.time += ms;
    for (const timer of this.#timers) {
      if (timer.live && timer.at <= this.time) {
        timer.live = false;
        timer.fn();
      }
    }
  }
}

function recorder(): { logger: Logger; lines: { level: string; fields: LogFields; message: string }[] } {
  const lines: { level: string; fields: LogFields; message: string }[] = [];
  const at = (level: string) => (fields: LogFields, message: string) => lines.push({ level, fields, message });
  return { logger: { info: at('info'), warn: at('warn'), error: at('error') }, lines };
}

test('a cause is logged at once, its repeats within the interval counted into one line at its end', (t) => {
  const clock = new HandClock();
  const { logger, lines } = recorder();
  const log = new RateLimitedLog(logger, 10_000, clock);
  for (let i = 0; i < 1000; i++) log.error('disk', { code: 'PH_ERR_STORE_FULL' }, 'disk full');
  t.is(lines.length, 1, 'one line for the first, none for the 999 repeats yet');
  t.deepEqual(lines[0], { level: 'error', fields: { code: 'PH_ERR_STORE_FULL' }, message: 'disk full' });
  clock.advance(10_000);
  t.is(lines.length, 2);
  t.is(lines[1]?.fields.repeats, 999);
  t.regex(lines[1]?.message ?? '', /^disk full \(999 more times in 10 s\)$/);
});

test('causes are counted apart; a quiet cause is logged again at once after its interval', (t) => {
  const clock = new HandClock();
  const { logger, lines } = recorder();
  const log = new RateLimitedLog(logger, 10_000, clock);
  log.warn('a', {}, 'first a');
  log.warn('b', {}, 'first b');
  log.warn('a', {}, 'again a');
  t.deepEqual(lines.map((line) => line.message), ['first a', 'first b']);
  clock.advance(10_000);
  t.deepEqual(lines.map((line) => line.message), ['first a', 'first b', 'again a (1 more time in 10 s)']);
  clock.advance(20_000);
  log.warn('b', {}, 'later b');
  t.is(lines.at(-1)?.message, 'later b', 'no repeats pending: logged at once');
});

test('flush() tells pending counts at once (at shutdown)', (t) => {
  const clock = new HandClock();
  const { logger, lines } = recorder();
  const log = new RateLimitedLog(logger, 10_000, clock);
  log.error('x', {}, 'boom');
  log.error('x', {}, 'boom');
  log.error('x', {}, 'boom');
  log.flush();
  t.deepEqual(lines.map((line) => line.message), ['boom', 'boom (2 more times in 10 s)']);
  clock.advance(60_000);
  t.is(lines.length, 2, 'the cancelled timer does not fire');
});
