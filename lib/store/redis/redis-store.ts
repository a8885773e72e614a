import { ClientClosedError, ClientOfflineError, ErrorReply, MaxCommandRedirectionsError } from '@redis/client';
import { StoreError, errorMessage } from '../../errors.js';
import { type Logger, silentLogger } from '../../logger.js';
import { type AsyncMailboxStore, ENQUEUED, type EnqueueResult, MAILBOX_FULL, STORE_UNAVAILABLE, type StoredMessage } from '../store.js';
import { COMPOSE_FUNCTION, LIBRARY_CODE, isFunctionMissing } from './library.js';
import { COMMAND_TIMEOUT_MS, RedisLink, type RedisTarget } from './link.js';
import type { RedisNode } from './node.js';
import { DEFAULT_KEY_PREFIX, DEFAULT_WAIT_TIMEOUT_MS } from './defaults.js';
import { decodeRecord, encodeRecord, mailboxKey } from './records.js';
import { NotSentError, type RoutedReply } from './redirects.js';
import { RateLimitedLog } from '../../util/rate-limited-log.js';

export interface RedisStoreOptions {
  readonly target: RedisTarget;
  readonly maxMessagesPerUser: number;
  /**
   * After a batch's writes, WAIT for this many replicas of each written node to confirm
   * them before MESSAGE SENT. 0 (the default) answers once the master has them.
   */
  readonly waitReplicas?: number;
  /** How long WAIT waits for the replicas; past it the COMPOSE's outcome is unknown. */
  readonly waitTimeoutMs?: number;
  /** Keys start `<keyPrefix>:{user}`; tests give each case its own. Default 'ph'. */
  readonly keyPrefix?: string;
  readonly logger?: Logger;
}

/**
 * Mailboxes in Redis or a Redis Cluster (see records.ts for the keys). Every operation
 * is one round trip: COMPOSE calls the library's function (append if not full), READ is
 * LPOP, LOGIN is LLEN. The store holds no state of its own, so any number of pigeonhole
 * nodes may serve the same users.
 */
export class RedisStore implements AsyncMailboxStore {
  readonly #link: RedisLink;
  readonly #max: string;
  readonly #prefix: string;
  readonly #waitReplicas: number;
  readonly #waitTimeoutMs: number;
  // One library load at a time, however many calls found the function missing.
  #loading: Promise<void> | null = null;
  // WAITs about to be sent, one per node: writes whose replies came in the same turn share it.
  readonly #waits = new Map<RedisNode, Promise<number>>();
  // One line per failure code per interval, with the latest reason: what tells an outage
  // (`CLUSTERDOWN`, `Socket closed unexpectedly`) from a misconfiguration.
  readonly #failures: RateLimitedLog;

  private constructor(link: RedisLink, options: RedisStoreOptions) {
    this.#link = link;
    this.#failures = new RateLimitedLog(options.logger ?? silentLogger);
    this.#max = String(options.maxMessagesPerUser);
    this.#prefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
    this.#waitReplicas = options.waitReplicas ?? 0;
    this.#waitTimeoutMs = options.waitTimeoutMs ?? DEFAULT_WAIT_TIMEOUT_MS;
  }

  /** Connects and loads the function library on every master; a StoreError if either fails. */
  static async open(options: RedisStoreOptions): Promise<RedisStore> {
    const link = await RedisLink.open(options.target, options.logger ?? silentLogger);
    const store = new RedisStore(link, options);
    try {
      await store.#loadLibrary();
    } catch (err) {
      link.destroy();
      throw new StoreError('PH_ERR_STORE_OPEN_FAILED', `cannot load pigeonhole's function library into Redis at ${link.description} (Redis 7 or later, or Valkey, is needed): ${errorMessage(err)}`, { cause: err });
    }
    return store;
  }

  async enqueue(user: string, message: StoredMessage): Promise<EnqueueResult> {
    const key = mailboxKey(this.#prefix, user);
    const args = ['FCALL', COMPOSE_FUNCTION, '1', key, this.#max, encodeRecord(message)];
    let stored: RoutedReply;
    try {
      stored = await this.#link.send(key, args);
    } catch (err) {
      if (!isFunctionMissing(err)) return this.#failedWrite(err);
      // Refused before it ran: load the library there and ask once more.
      try {
        await this.#loadLibrary();
        stored = await this.#link.send(key, args);
      } catch (again) {
        return this.#failedWrite(again);
      }
    }
    const length = stored.reply;
    if (length === 0) return MAILBOX_FULL;
    if (typeof length !== 'number') throw new StoreError('PH_ERR_STORE_OUTCOME_UNKNOWN', `Redis answered COMPOSE's function with ${typeof length}, not a length`);
    if (this.#waitReplicas > 0) await this.#replicated(stored.node);
    return ENQUEUED;
  }

  async dequeue(user: string): Promise<StoredMessage | null> {
    const key = mailboxKey(this.#prefix, user);
    const record = await this.#read(key, ['LPOP', key]);
    if (record === null) return null;
    if (!Buffer.isBuffer(record)) throw new StoreError('PH_ERR_STORE_BAD_RECORD', `Redis answered LPOP with ${typeof record}`);
    return decodeRecord(record);
  }

  async count(user: string): Promise<number> {
    const key = mailboxKey(this.#prefix, user);
    const count = await this.#read(key, ['LLEN', key]);
    if (typeof count !== 'number') throw new StoreError('PH_ERR_STORE_BAD_RECORD', `Redis answered LLEN with ${typeof count}`);
    return count;
  }

  async close(): Promise<void> {
    this.#failures.flush();
    await this.#link.close();
  }

  async #read(key: Buffer, args: (string | Buffer)[]): Promise<unknown> {
    try {
      return (await this.#link.send(key, args)).reply;
    } catch (err) {
      // A READ or LOGIN with no answer has no true answer to give: the shard drops it.
      throw this.#failed(
        notRun(err)
          ? new StoreError('PH_ERR_STORE_UNAVAILABLE', `Redis did not run ${String(args[0])}: ${errorMessage(err)}`, { cause: err })
          : new StoreError('PH_ERR_STORE_OUTCOME_UNKNOWN', `the connection to Redis failed during ${String(args[0])}: ${errorMessage(err)}`, { cause: err }),
      );
    }
  }

  /** A COMPOSE that failed: MESSAGE FAILED when it certainly did not run; otherwise no answer. */
  #failedWrite(err: unknown): EnqueueResult {
    if (notRun(err)) {
      this.#reportFailure('PH_ERR_STORE_UNAVAILABLE', errorMessage(err));
      return STORE_UNAVAILABLE;
    }
    throw this.#failed(new StoreError('PH_ERR_STORE_OUTCOME_UNKNOWN', `the connection to Redis failed with a COMPOSE in flight, which may or may not be stored: ${errorMessage(err)}`, { cause: err }));
  }

  #failed(err: StoreError): StoreError {
    this.#reportFailure(err.code, err.message);
    return err;
  }

  #reportFailure(code: string, reason: string): void {
    this.#failures.error(
      code,
      { code },
      `a Redis command failed (COMPOSEs Redis did not take are answered MESSAGE FAILED, the others drop their connection): ${reason}`,
    );
  }

  #loadLibrary(): Promise<void> {
    this.#loading ??= this.#link
      .masters()
      .then((masters) => Promise.all(masters.map((node) => node.sendCommand(['FUNCTION', 'LOAD', 'REPLACE', LIBRARY_CODE]))))
      .then(() => {})
      .finally(() => (this.#loading = null));
    return this.#loading;
  }

  /** Resolves once `waitReplicas` replicas have the writes on `node`'s connection; else a StoreError. */
  async #replicated(node: RedisNode): Promise<void> {
    let acked: number;
    try {
      let pending = this.#waits.get(node);
      if (pending === undefined) {
        pending = this.#wait(node);
        this.#waits.set(node, pending);
      }
      acked = await pending;
    } catch (err) {
      throw this.#failed(new StoreError('PH_ERR_STORE_NOT_REPLICATED', `stored, but WAIT for ${this.#waitReplicas} replica(s) failed: ${errorMessage(err)}`, { cause: err }));
    }
    if (acked < this.#waitReplicas) {
      throw this.#failed(new StoreError('PH_ERR_STORE_NOT_REPLICATED', `stored, but only ${acked} of ${this.#waitReplicas} replica(s) confirmed it within ${this.#waitTimeoutMs} ms`));
    }
  }

  async #wait(node: RedisNode): Promise<number> {
    // After the turn in which this write's reply came: the other replies of the same
    // pipeline arrive in that turn too, and share this WAIT.
    await new Promise((resolve) => setImmediate(resolve));
    this.#waits.delete(node);
    // WAIT covers every earlier write on its connection, which is the one that carried them.
    const acked = await node.sendCommand<unknown>(['WAIT', String(this.#waitReplicas), String(this.#waitTimeoutMs)], { timeout: this.#waitTimeoutMs + COMMAND_TIMEOUT_MS });
    if (typeof acked !== 'number') throw new Error(`Redis answered WAIT with ${typeof acked}`);
    return acked;
  }
}

/**
 * The command certainly did not run: Redis refused it (an error reply: nothing of ours
 * writes before it can fail), it was redirected too often (each redirect is a refusal),
 * or it was never sent (no connection, and no offline queue to send it later; or no node
 * to send it to).
 */
function notRun(err: unknown): boolean {
  return err instanceof ErrorReply || err instanceof MaxCommandRedirectionsError || err instanceof ClientOfflineError || err instanceof ClientClosedError || err instanceof NotSentError;
}

