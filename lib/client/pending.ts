import { ClientError } from '../errors.js';

/** What every queued command can do: be failed from outside (timeout, drop). */
export interface PendingCommand {
  reject(err: Error): void;
}

/**
 * The commands sent and not yet answered, oldest first. The protocol has no request
 * ids: replies come back in command order, so the oldest pending command owns the next
 * reply (ioredis `commandQueue` works the same way).
 *
 * Timeouts: a command times out once it has been the oldest unanswered command for
 * `timeoutMs` with no reply byte arriving in between. Timing from the head rather than
 * from each send means a long pipeline is never failed while the server is still
 * answering it, yet a server that goes silent fails the call within `timeoutMs`. A
 * timeout rejects the head with PH_ERR_CLIENT_TIMEOUT and calls `onTimeout`, which must
 * close the connection: a late reply could no longer be matched to its command.
 *
 * Stored in an array with a moving head so that shift() stays O(1) on a long pipeline.
 */
export class PendingQueue<C extends PendingCommand> {
  readonly timeoutMs: number;
  readonly #onTimeout: (err: ClientError) => void;
  #items: (C | undefined)[] = [];
  #head = 0;
  #timer: NodeJS.Timeout | null = null;

  constructor(timeoutMs: number, onTimeout: (err: ClientError) => void) {
    this.timeoutMs = timeoutMs;
    this.#onTimeout = onTimeout;
  }

  get size(): number {
    return this.#items.length - this.#head;
  }

  /** The command the next reply belongs to. */
  get head(): C | undefined {
    return this.#items[this.#head];
  }

  push(command: C): void {
    this.#items.push(command);
    if (this.size === 1) this.#arm();
  }

  /** Removes the head once its reply is complete; the next command's clock starts now. */
  shift(): C | undefined {
    const command = this.#items[this.#head];
    if (command === undefined) return undefined;
    this.#items[this.#head++] = undefined;
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    if (this.size === 0) this.#disarm();
    else this.#arm();
    return command;
  }

  /** Reply bytes arrived (maybe only part of a reply): the server is alive. */
  progress(): void {
    if (this.size > 0) this.#arm();
  }

  /** Empties the queue and stops the clock, handing back what was pending in order. */
  drain(): C[] {
    const rest = this.#items.slice(this.#head) as C[];
    this.#items = [];
    this.#head = 0;
    this.#disarm();
    return rest;
  }

  #arm(): void {
    if (this.#timer === null) this.#timer = setTimeout(() => this.#expire(), this.timeoutMs);
    else this.#timer.refresh();
  }

  #disarm(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #expire(): void {
    this.#timer = null;
    const head = this.shift();
    if (head === undefined) return;
    const err = new ClientError('PH_ERR_CLIENT_TIMEOUT', `the server did not answer within ${this.timeoutMs} ms (timeoutMs); the connection is closed`);
    head.reject(err);
    this.#onTimeout(err);
  }
}
