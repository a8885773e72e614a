// Following MOVED and ASK by hand, against fake nodes: which node ran the command, what
// each redirect sends, and when a redirect counts as a refusal.
import test from 'ava';
import { ErrorReply, MaxCommandRedirectionsError, type RedisArgument } from '@redis/client';
import type { RedisNode } from '../../../lib/store/redis/node.js';
import { MAX_REDIRECTS, NotSentError, redirectOf, sendFollowingRedirects, type SlotMap } from '../../../lib/store/redis/redirects.js';

const OPTIONS = { timeout: 1_000 };

/** A node that answers each command with the next of `answers` (an Error is an error reply). */
class FakeNode implements RedisNode {
  readonly sent: { args: string[]; chained: boolean }[] = [];
  constructor(readonly answers: (unknown | Error)[]) {}

  async sendCommand<T>(args: readonly RedisArgument[], options?: { readonly chainId?: symbol }): Promise<T> {
    this.sent.push({ args: args.map(String), chained: options?.chainId !== undefined });
    if (args[0] === 'ASKING') return 'OK' as T;
    const answer = this.answers.shift();
    if (answer instanceof Error) throw answer;
    return answer as T;
  }
}

function mapOf(owner: () => FakeNode, byAddress: Record<string, FakeNode>): SlotMap & { relearned: number } {
  const map = {
    relearned: 0,
    ownerOf: async () => owner(),
    nodeAt: async (address: string) => byAddress[address],
    relearn: async () => void map.relearned++,
  };
  return map;
}

const COMMAND = ['FCALL', 'f', '1', 'k'];

test('no redirect: the owner runs it once, and is named', async (t) => {
  const a = new FakeNode([3]);
  const routed = await sendFollowingRedirects(mapOf(() => a, {}), 'k', COMMAND, OPTIONS);
  t.is(routed.reply, 3);
  t.is(routed.node, a);
  t.deepEqual(a.sent, [{ args: COMMAND, chained: false }]);
});

test('ASK: the named node gets ASKING chained to the command, and is the one named', async (t) => {
  const a = new FakeNode([new ErrorReply('ASK 7 10.0.0.2:7001')]);
  const b = new FakeNode([1]);
  const map = mapOf(() => a, { '10.0.0.2:7001': b });
  const routed = await sendFollowingRedirects(map, 'k', COMMAND, OPTIONS);
  t.is(routed.node, b);
  t.deepEqual(b.sent, [{ args: ['ASKING'], chained: true }, { args: COMMAND, chained: true }]);
  t.is(map.relearned, 0, 'a known node needs no new map');
});

test('MOVED: the map is learnt again and the new owner runs it', async (t) => {
  const a = new FakeNode([new ErrorReply('MOVED 7 10.0.0.2:7001')]);
  const b = new FakeNode([1]);
  const map = mapOf(() => (map.relearned === 0 ? a : b), {});
  const routed = await sendFollowingRedirects(map, 'k', COMMAND, OPTIONS);
  t.is(routed.node, b);
  t.is(map.relearned, 1);
  t.deepEqual(b.sent, [{ args: COMMAND, chained: false }], 'no ASKING after MOVED');
});

test('ASK to a node the map does not know, even learnt again: refused (an error reply), run nowhere', async (t) => {
  const a = new FakeNode([new ErrorReply('ASK 7 10.0.0.9:7001')]);
  const map = mapOf(() => a, {});
  const err = await t.throwsAsync(sendFollowingRedirects(map, 'k', COMMAND, OPTIONS), { instanceOf: ErrorReply });
  t.regex(err?.message ?? '', /10\.0\.0\.9:7001/);
  t.is(map.relearned, 1);
});

test(`redirected ${MAX_REDIRECTS + 1} times: MaxCommandRedirectionsError`, async (t) => {
  const a = new FakeNode(Array.from({ length: MAX_REDIRECTS + 5 }, () => new ErrorReply('MOVED 7 10.0.0.1:7000')));
  await t.throwsAsync(sendFollowingRedirects(mapOf(() => a, {}), 'k', COMMAND, OPTIONS), { instanceOf: MaxCommandRedirectionsError });
  t.is(a.sent.length, MAX_REDIRECTS + 1);
});

test('any other error passes through untouched', async (t) => {
  const boom = new ErrorReply('ERR Function not found');
  const a = new FakeNode([boom]);
  t.is(await t.throwsAsync(sendFollowingRedirects(mapOf(() => a, {}), 'k', COMMAND, OPTIONS)), boom);
});

test('redirectOf reads MOVED and ASK replies only', (t) => {
  t.deepEqual(redirectOf(new ErrorReply('MOVED 3999 127.0.0.1:6381')), { kind: 'MOVED', address: '127.0.0.1:6381' });
  t.deepEqual(redirectOf(new ErrorReply('ASK 1 ::1:6381')), { kind: 'ASK', address: '::1:6381' });
  t.is(redirectOf(new ErrorReply('ERR MOVED 1 x:1')), null);
  t.is(redirectOf(new Error('MOVED 1 x:1')), null, 'not a reply from Redis');
});

test('no node to send to, first or after a redirect: NotSentError, which the store answers as not run', async (t) => {
  const down = new Error('connect ECONNREFUSED');
  const unreachable: SlotMap = { ownerOf: async () => Promise.reject(down), nodeAt: async () => undefined, relearn: async () => {} };
  const first = await t.throwsAsync(sendFollowingRedirects(unreachable, 'k', COMMAND, OPTIONS), { instanceOf: NotSentError });
  t.is(first?.cause, down);
  const a = new FakeNode([new ErrorReply('ASK 7 10.0.0.2:7001')]);
  const lost: SlotMap = { ownerOf: async () => a, nodeAt: async () => Promise.reject(down), relearn: async () => {} };
  await t.throwsAsync(sendFollowingRedirects(lost, 'k', COMMAND, OPTIONS), { instanceOf: NotSentError });
  t.is(a.sent.length, 1, 'sent once, refused, and sent nowhere else');
});
