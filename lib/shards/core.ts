import { StoreError } from '../errors.js';
import type { Logger } from '../logger.js';
import { REPLY_MESSAGE_FAILED, REPLY_MESSAGE_SENT, REPLY_READ_ERROR } from '../protocol/encode.js';
import { type MailboxStore, MessageSlot, type StoreStats, isRanged } from '../store/store.js';
import { ownCopy } from '../util/bytes.js';
import { RateLimitedLog } from '../util/rate-limited-log.js';
import { OP_COMPOSE, OP_COUNT, OP_READ, ReplyWriter, RequestReader, readBatchHeader } from './messages.js';
import { NameCache } from './name-cache.js';

/**
 * How a batch is applied: 'apply' as asked; 'refuse-writes' with every COMPOSE answered
 * MESSAGE FAILED unapplied (a store that could not commit the batch); 'failed' touching
 * nothing, READs aborted (a store that could not commit even that).
 */
type ApplyMode = 'apply' | 'refuse-writes' | 'failed';

/**
 * A mailbox shard's whole logic: apply a request batch to the store, in order, as one
 * unit, and answer with the reply batch. It runs the same whether the shard lives in a
 * worker thread or inline in the acceptor's thread; it knows nothing of sockets or ports.
 *
 * A damaged mailbox (the store throws PH_ERR_STORE_DAMAGED while a command touches it)
 * is fenced off: the batch is rolled back and applied again with that mailbox's
 * commands failed (LOGIN and READ drop their connections, since any answer could be
 * wrong; COMPOSE to it gets MESSAGE FAILED), so its neighbours in the batch are served.
 * It stays fenced off, and is logged once, for the life of the shard.
 */
export class ShardCore {
  readonly #store: MailboxStore;
  readonly #log: RateLimitedLog;
  readonly #replies = new ReplyWriter();
  readonly #names = new NameCache();
  // The COMPOSE being stored, refilled for each one: its body is a range of the batch.
  readonly #incoming = new MessageSlot();
  readonly #damaged = new Set<string>();
  // The mailbox of the command the store is working on, so that damage it throws can
  // be pinned on it; null outside commands (the journal, the commit).
  #touching: string | null = null;

  constructor(store: MailboxStore, logger: Logger) {
    this.#store = store;
    this.#log = new RateLimitedLog(logger);
  }

  /** Applies a request batch that came on channel `link` (an acceptor thread's; see the journal). */
  handle(batch: Uint8Array, link = 0): Buffer {
    const bytes = Buffer.from(batch.buffer, batch.byteOffset, batch.byteLength);
    const { seq, acked, resent } = readBatchHeader(bytes);
    // A batch sent again after its shard was restarted: if it was committed before the
    // crash, answer exactly as then instead of applying it twice.
    if (resent) {
      let earlier: Buffer | null;
      try {
        earlier = this.#store.journal?.replyFor(link, seq) ?? null;
      } catch (err) {
        if (!(err instanceof StoreError)) throw err;
        // Whether it was applied cannot be known: no answer is the only right one.
        this.#log.error(`${err.code}:journal`, { code: err.code }, `${err.message}; a batch sent again cannot be matched with its journal, so its connections are dropped`);
        return this.#abortAll(bytes);
      }
      if (earlier !== null) {
        // A copy of its own: the reply may be transferred, and the journal keeps its bytes.
        return ownCopy(earlier);
      }
    }
    let mode: ApplyMode = 'apply';
    // A commit failed with its outcome unknown: the file may take it back in when next
    // opened. Another commit from the same point supersedes it; until one has, nothing
    // about this batch can be said.
    let uncertain: StoreError | null = null;
    for (;;) {
      try {
        return this.#commit(bytes, link, seq, acked, mode);
      } catch (err) {
        this.#replies.take();
        const touching = this.#touching;
        this.#touching = null;
        if (!(err instanceof StoreError)) throw err; // a bug, not a store failure
        if (err.code === 'PH_ERR_STORE_OUTCOME_UNKNOWN') uncertain = err;
        if (err.code === 'PH_ERR_STORE_DAMAGED' && touching !== null && !this.#damaged.has(touching)) {
          this.#fenceOff(touching, err);
          continue;
        }
        if (mode === 'apply') {
          // The batch could not commit (a disk that is really full, an I/O error). Its
          // READs free room and must not be lost with its COMPOSEs: commit it once more
          // with every COMPOSE refused.
          const state = uncertain === null ? 'was rolled back' : 'may be in the file or not';
          this.#log.error(`${err.code}:retry`, { code: err.code }, `${err.message}; the batch ${state}, and is committed again without its COMPOSEs`);
          mode = 'refuse-writes';
          continue;
        }
        if (uncertain !== null) {
          // No answer is safe, and neither is going on from a state the file may not
          // hold: the shard's thread ends (inline, the process), and its restart reads
          // the file, whose journal answers the batch again if it did commit.
          this.#log.error(`${uncertain.code}:stop`, { code: uncertain.code }, `${err.message}; after a commit whose outcome is unknown, the shard stops: restarted, it learns from its file whether the batch took effect`);
          this.#log.flush();
          throw uncertain;
        }
        // Still nothing took effect. Say so without a wrong answer: COMPOSE fails, READ
        // drops its connection (its message is still stored), LOGIN counts as stored.
        this.#log.error(`${err.code}:failed`, { code: err.code }, `${err.message}; the batch's COMPOSEs were answered MESSAGE FAILED and its READs' connections dropped`);
        this.#apply(bytes, 'failed');
        return this.#replies.take();
      }
    }
  }

  /** Applies the batch in one store transaction, journaling its reply; returns the reply. */
  #commit(bytes: Buffer, link: number, seq: number, acked: number, mode: ApplyMode): Buffer {
    const journal = this.#store.journal;
    const reply = this.#store.batch(() => {
      this.#apply(bytes, mode);
      const reply = this.#replies.take();
      journal?.record(link, seq, reply, acked);
      return reply;
    });
    return reply;
  }

  /**
   * Drops the journal of a link whose acceptor thread is gone: nothing will be sent on it
   * again. Left in place it would only cost room until the next start, but a thread that
   * keeps dying must not grow the journal.
   */
  forgetLink(link: number): void {
    try {
      this.#store.journal?.forget(link);
    } catch (err) {
      if (!(err instanceof StoreError)) throw err;
      this.#log.error(`${err.code}:forget`, { code: err.code }, `${err.message}; the journal of a closed link stays until the next start`);
    }
  }

  close(): void {
    this.#log.flush();
    this.#store.close();
  }

  /** A reply batch with no answer for any command: every connection in it is dropped. */
  #abortAll(batch: Buffer): Buffer {
    const record = new RequestReader(batch);
    while (record.next()) this.#replies.aborted();
    return this.#replies.take();
  }

  #fenceOff(user: string, err: StoreError): void {
    this.#damaged.add(user);
    this.#log.error(
      `PH_ERR_STORE_DAMAGED:${user}`,
      { code: err.code, user },
      `${err.message}; mailbox ${user} is fenced off: its LOGIN and READ drop their connections and COMPOSE to it fails. Run 'pigeonhole check' and 'pigeonhole salvage' on the data directory`,
    );
  }

  /** What the store holds, if it can tell. */
  stats(): StoreStats | null {
    return this.#store.stats?.() ?? null;
  }

  #apply(batch: Buffer, mode: ApplyMode): void {
    const failed = mode === 'failed';
    const refuseWrites = mode !== 'apply';
    const store = this.#store;
    const names = this.#names;
    const out = this.#replies;
    const damaged = this.#damaged;
    const record = new RequestReader(batch);
    while (record.next()) {
      const name = names.get(batch, record.nameStart, record.nameEnd);
      const fenced = damaged.size !== 0 && damaged.has(name);
      this.#touching = name;
      switch (record.op) {
        case OP_COUNT: {
          if (fenced) {
            out.aborted();
            break;
          }
          out.countReply(store.count(name));
          break;
        }
        case OP_COMPOSE: {
          let ok = false;
          if (!refuseWrites && !fenced) {
            const message = this.#incoming;
            message.from = names.get(batch, record.fromStart, record.fromEnd);
            message.source = batch;
            message.start = record.bodyStart;
            message.end = record.bodyEnd;
            const result = store.enqueue(name, message);
            ok = result.ok;
            if (!result.ok && result.reason === 'unavailable') {
              this.#log.error('PH_ERR_STORE_FULL', { code: 'PH_ERR_STORE_FULL' }, 'the mailbox store is full (its disk at or near the free space it keeps, maxStoreBytes reached, or as many mailboxes as the shard\'s heap can hold): COMPOSE answered MESSAGE FAILED; READs go on');
            }
          }
          out.reply(ok ? REPLY_MESSAGE_SENT : REPLY_MESSAGE_FAILED);
          break;
        }
        case OP_READ: {
          if (failed || fenced) {
            out.aborted();
            break;
          }
          const message = store.dequeue(name);
          if (message === null) {
            out.reply(REPLY_READ_ERROR);
          } else if (isRanged(message)) {
            out.messageReplyFrom(message.fromBytes, message.source, message.start, message.end);
          } else {
            out.messageReply(message.from, message.body);
          }
          break;
        }
      }
    }
    this.#touching = null;
  }
}
