import test from 'ava';
import { type Logger, silentLogger } from '../../lib/logger.js';
import { ShardError } from '../../lib/errors.js';
import type { ComposeCommand } from '../../lib/protocol/commands.js';
import { ReplyQueue } from '../../lib/session/reply-queue.js';
import { OP_COMPOSE, OP_COUNT, OP_READ, ReplyWriter, RequestReader, readBatchHeader } from '../../lib/shards/messages.js';
import { type PendingReply, ShardRouter } from '../../lib/shards/router.js';
import { fakeBackend } from '../helpers/fake-backend.js';

/** A reply batch of `records` LOGIN counts of 0. */
function zeroCounts(records: number): Buffer {
  const writer = new ReplyWriter();
  for (let i = 0; i < records; i++) writer.reply(Buffer.from('0\n'));
  return writer.take();
}

/** A router over one fake shard that answers each batch with `answer(requests)` records. */
function routerAnswering(records: (requests: number) => number): { router: ShardRouter; errors: unknown[] } {
  const errors: unknown[] = [];
  let sent = 0;
  const backend = fakeBackend({
    send: () => {
      sent++;
      try {
        router.onReply(0, zeroCounts(records(sent)));
      } catch (err) {
        errors.push(err);
      }
    },
  });
  const router = new ShardRouter(backend, { replay: false, logger: silentLogger });
  return { router, errors };
}

const pending = (answers: string[], op: PendingReply['op'] = OP_COUNT): PendingReply => ({
  op,
  cancelled: false,
  fill: (source, start, end) => void answers.push(source.toString('latin1', start, end)),
  abort: () => void answers.push('ABORTED'),
});

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('replies pair with the commands of the batch they answer, in order', async (t) => {
  const { router, errors } = routerAnswering(() => 2);
  const answers: string[] = [];
  router.count(Buffer.from('a'), pending(answers));
  router.count(Buffer.from('b'), pending(answers));
  await turn();
  t.deepEqual(answers, ['0\n', '0\n']);
  t.deepEqual(errors, []);
});

test('a reply batch with more records than its batch had commands fails where it happens', async (t) => {
  const { router, errors } = routerAnswering(() => 3);
  router.count(Buffer.from('a'), pending([]));
  router.count(Buffer.from('b'), pending([]));
  await turn();
  t.is(errors.length, 1);
  t.regex(String(errors[0]), /more replies than it was sent commands/);
});

test('a reply batch with fewer records than its batch had commands fails where it happens', async (t) => {
  const { router, errors } = routerAnswering(() => 1);
  router.count(Buffer.from('a'), pending([]));
  router.count(Buffer.from('b'), pending([]));
  await turn();
  t.is(errors.length, 1);
  t.regex(String(errors[0]), /answered batch 1 with 1 replies for 2 requests/);
});

test('a reply with no batch sent is refused', (t) => {
  const { router } = routerAnswering(() => 0);
  t.throws(() => router.onReply(0, Buffer.alloc(0)), { message: /never sent/ });
});

test('close() sends what waits behind a batch in flight, and ends the shards only once every command is answered', async (t) => {
  // A shard that answers when told to: one batch in flight, the next one waits.
  const unanswered: number[] = [];
  const events: string[] = [];
  const backend = fakeBackend({
    send: (_shardId, batch) => {
      const requests = new RequestReader(batch);
      let count = 0;
      while (requests.next()) count++;
      unanswered.push(count);
      events.push('send');
    },
    close: async () => void events.push('close'),
  });
  const answerOne = (): void => router.onReply(0, zeroCounts(unanswered.shift() ?? 0));
  const router = new ShardRouter(backend, { replay: false, logger: silentLogger });
  const answers: string[] = [];
  router.count(Buffer.from('a'), pending(answers));
  await turn();
  router.count(Buffer.from('b'), pending(answers));
  router.count(Buffer.from('c'), pending(answers));
  await turn();
  t.deepEqual(events, ['send'], 'b and c wait behind a');

  const closed = router.close();
  // A second call waits for the same: neither settles, nor ends the shards, early.
  const closedAgain = router.close();
  let settled = 0;
  void closed.then(() => settled++);
  void closedAgain.then(() => settled++);
  await turn();
  t.deepEqual(events, ['send'], 'the shards are not closed while a command waits');
  answerOne();
  t.deepEqual(events, ['send', 'send'], 'b and c leave once a is answered');
  t.is(settled, 0);
  answerOne();
  await Promise.all([closed, closedAgain]);
  t.deepEqual(events, ['send', 'send', 'close'], 'the shards are closed once');
  t.deepEqual(answers, ['0\n', '0\n', '0\n']);
  t.throws(() => router.count(Buffer.from('d'), pending(answers)), { message: /after the router closed/ });
});

test('a batch left unanswered for stallMs is logged once, with its shard and waiting commands, and the shard is nudged', async (t) => {
  const warnings: Record<string, unknown>[] = [];
  const logger: Logger = { ...silentLogger, warn: (fields) => void warnings.push(fields) };
  const nudged: number[] = [];
  const unanswered: Buffer[] = [];
  const backend = {
    ...fakeBackend({ send: (_shardId, batch) => void unanswered.push(batch) }),
    nudge: (shardId: number) => void nudged.push(shardId),
  };
  const router = new ShardRouter(backend, { replay: false, logger, stallMs: 100 });
  const answers: string[] = [];
  router.count(Buffer.from('alice'), pending(answers));
  router.count(Buffer.from('bob'), pending(answers));
  await turn();
  t.is(unanswered.length, 1, 'the batch was sent');
  await new Promise((resolve) => setTimeout(resolve, 450));
  t.is(warnings.length, 1);
  const [warning] = warnings;
  t.like(warning, { code: 'PH_ERR_SHARD_STALLED', shard: 0, waiting: 2 });
  t.true(Number(warning?.seconds) >= 0.1);
  t.deepEqual(nudged, [0], 'nudged once for the batch, not at every look');
  t.is(router.counters.stalls, 1, 'counted once, for the metrics');
  router.onReply(0, zeroCounts(2));
  t.deepEqual(answers, ['0\n', '0\n']);
  await new Promise((resolve) => setTimeout(resolve, 250));
  t.is(warnings.length, 1, 'an answered shard is not reported again');
});

test('a shard that answers within stallMs is neither logged nor nudged', async (t) => {
  const warnings: unknown[] = [];
  const nudged: number[] = [];
  const logger: Logger = { ...silentLogger, warn: (fields) => void warnings.push(fields) };
  const backend = {
    ...fakeBackend({ send: () => void setTimeout(() => router.onReply(0, zeroCounts(1)), 20) }),
    nudge: (shardId: number) => void nudged.push(shardId),
  };
  const router = new ShardRouter(backend, { replay: false, logger, stallMs: 200 });
  const answers: string[] = [];
  for (let i = 0; i < 5; i++) {
    router.count(Buffer.from('alice'), pending(answers));
    await new Promise((resolve) => setTimeout(resolve, 60));
  }
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.is(answers.length, 5);
  t.deepEqual(warnings, []);
  t.deepEqual(nudged, []);
  t.is(router.counters.stalls, 0);
});

/** A router over one fake shard that keeps each batch (a copy) until the test answers or loses it. */
function heldRouter(): { router: ShardRouter; batches: Buffer[] } {
  const batches: Buffer[] = [];
  const router = new ShardRouter(
    fakeBackend({ send: (_shardId, batch) => void batches.push(Buffer.from(batch)) }),
    { replay: false, logger: silentLogger },
  );
  return { router, batches };
}

/** Each record of a request batch as `OP user`. */
function records(batch: Buffer | undefined): string[] {
  const names: Record<number, string> = { [OP_COUNT]: 'COUNT', [OP_COMPOSE]: 'COMPOSE', [OP_READ]: 'READ' };
  const reader = new RequestReader(batch ?? Buffer.alloc(0));
  const out: string[] = [];
  while (reader.next()) out.push(`${names[reader.op]} ${reader.batch.toString('latin1', reader.nameStart, reader.nameEnd)}`);
  return out;
}

const compose = (to: string, body: string): ComposeCommand => {
  const toBytes = Buffer.from(to);
  const bodyBytes = Buffer.from(body);
  return { kind: 'compose', toSource: toBytes, toStart: 0, toEnd: toBytes.length, to: toBytes, source: bodyBytes, start: 0, end: bodyBytes.length, body: bodyBytes };
};

/** A connection's reply queue, writing nowhere. */
const connection = (): ReplyQueue => new ReplyQueue({ write: () => {}, idle: () => true, end: () => {} });

test('a READ queued behind one that failed is withdrawn before it is sent: the dropped connection takes no message', async (t) => {
  const { router, batches } = heldRouter();
  const alice = connection();
  const carol = connection();
  router.read(Buffer.from('alice'), alice.reserve(OP_READ, 1));
  await turn();
  t.deepEqual(records(batches[0]), ['READ alice']);
  // Behind the batch in flight: bob writes to alice, alice pipelines a second READ, and
  // carol, on a connection of her own, reads too.
  router.compose(compose('alice', 'hello'), Buffer.from('bob'), connection().reserve(OP_COMPOSE, 1));
  router.read(Buffer.from('alice'), alice.reserve(OP_READ, 1));
  router.read(Buffer.from('carol'), carol.reserve(OP_READ, 1));
  await turn();
  t.is(batches.length, 1, 'one batch in flight');
  // The shard dies with alice's first READ: its connection is dropped.
  router.onShardDown(0, new ShardError('PH_ERR_SHARD_CRASHED', 'shard 0 died'));
  await turn();
  t.true(alice.ending);
  t.deepEqual(records(batches[1]), ['COMPOSE alice', 'COUNT alice', 'READ carol'], "alice's second READ takes nothing; carol's is hers");
  // Its answer (a count) is not counted as a message handed out; carol's message is.
  const reply = new ReplyWriter();
  reply.reply(Buffer.from('MESSAGE SENT\n'));
  reply.reply(Buffer.from('1\n'));
  reply.reply(Buffer.from('bob\nhello\n'));
  router.onReply(0, reply.take());
  t.is(router.counters.readMessage, 1);
  t.is(router.counters.messageSent, 1);
});

test('the READs of a connection that is gone are withdrawn if they have not left yet, and only theirs', async (t) => {
  const { router, batches } = heldRouter();
  const alice = connection();
  const dave = connection();
  router.read(Buffer.from('dave'), dave.reserve(OP_READ, 1));
  await turn();
  router.read(Buffer.from('alice'), alice.reserve(OP_READ, 1));
  router.read(Buffer.from('alice'), alice.reserve(OP_READ, 1));
  // dave's second READ waits too, behind his first (in flight): his connection stays.
  router.read(Buffer.from('dave'), dave.reserve(OP_READ, 1));
  alice.cancel(); // her socket closed
  router.onReply(0, zeroCounts(1));
  await turn();
  t.deepEqual(records(batches[1]), ['COUNT alice', 'COUNT alice', 'READ dave']);
  // Once withdrawn, later batches are left as they are.
  router.onReply(0, zeroCounts(3));
  router.read(Buffer.from('alice'), connection().reserve(OP_READ, 1));
  await turn();
  t.deepEqual(records(batches[2]), ['READ alice']);
});

test('a durable shard that died each time a batch was sent gets it no more: its COMPOSEs drop their connections, as their outcome is unknown', async (t) => {
  const batches: Buffer[] = [];
  const errors: string[] = [];
  const logger: Logger = { ...silentLogger, error: (_fields, message) => void errors.push(message) };
  const router = new ShardRouter(fakeBackend({ send: (_shardId, batch) => void batches.push(Buffer.from(batch)) }), { replay: true, logger });
  const answers: string[] = [];
  router.compose(compose('alice', 'hello'), Buffer.from('bob'), pending(answers, OP_COMPOSE));
  await turn();
  const died = (): void => router.onShardDown(0, new ShardError('PH_ERR_SHARD_CRASHED', 'shard 0 died'));
  died();
  died();
  t.is(batches.length, 3, 'sent again twice');
  t.deepEqual(answers, []);
  died();
  t.is(batches.length, 3, 'not a fourth time');
  t.deepEqual(answers, ['ABORTED'], 'neither MESSAGE SENT nor MESSAGE FAILED');
  t.regex(errors.join('\n'), /sent 3 times/);
});

test('a batch sent again after its shard died withdraws the READs of connections that closed meanwhile', async (t) => {
  const batches: Buffer[] = [];
  const router = new ShardRouter(fakeBackend({ send: (_shardId, batch) => void batches.push(Buffer.from(batch)) }), { replay: true, logger: silentLogger });
  const alice = connection();
  const bob = connection();
  router.read(Buffer.from('alice'), alice.reserve(OP_READ, 1));
  router.read(Buffer.from('bob'), bob.reserve(OP_READ, 1));
  await turn();
  t.deepEqual(records(batches[0]), ['READ alice', 'READ bob']);
  alice.cancel(); // her socket closed while the shard restarts
  router.onShardDown(0, new ShardError('PH_ERR_SHARD_CRASHED', 'shard 0 died'));
  t.deepEqual(records(batches[1]), ['COUNT alice', 'READ bob']);
  t.is(readBatchHeader(batches[1] as Buffer).resent, true);
});

test('a backend that runs each batch within send() is handed the writer\'s own buffer; any other, a copy of its own', async (t) => {
  for (const readsInPlace of [true, false]) {
    const batches: Buffer[] = [];
    const seen: string[][] = [];
    const router = new ShardRouter(
      {
        ...fakeBackend({
          send: (_shardId, batch) => {
            batches.push(batch);
            seen.push(records(batch));
            router.onReply(0, zeroCounts(1));
          },
        }),
        readsInPlace,
      },
      { replay: false, logger: silentLogger },
    );
    const answers: string[] = [];
    router.count(Buffer.from('alice'), pending(answers));
    await turn();
    router.count(Buffer.from('bob'), pending(answers));
    await turn();
    t.deepEqual(seen, [['COUNT alice'], ['COUNT bob']], 'each batch as it was written');
    t.deepEqual(answers, ['0\n', '0\n']);
    const [first, second] = batches as [Buffer, Buffer];
    if (readsInPlace) {
      t.true(first.buffer === second.buffer && first.byteOffset === second.byteOffset, 'the same bytes, batch after batch');
    } else {
      t.deepEqual(records(first), ['COUNT alice'], 'a copy outlives the next batch');
    }
  }
});
