import { REPLY_MESSAGE_SENT, REPLY_READ_ERROR } from '../protocol/encode.js';
import { OP_COMPOSE, OP_COUNT, type ShardOp } from './messages.js';

const LF = 0x0a;
// Samples kept between two reads by the metrics registry; when full they are handed over
// at once (see BatchSamples.drain), so none is lost however rare the scrapes.
const SAMPLE_CAPACITY = 4096;

/**
 * Each answered batch's shard, size (commands) and round trip (seconds, from sending the
 * batch to its reply), kept in typed arrays: recording one costs three stores, and the
 * metrics registry turns them into histograms only when it is read.
 */
export class BatchSamples {
  readonly shard = new Uint16Array(SAMPLE_CAPACITY);
  readonly size = new Uint32Array(SAMPLE_CAPACITY);
  readonly seconds = new Float64Array(SAMPLE_CAPACITY);
  length = 0;
  /** Takes the samples when the buffer is full; without one, the full buffer is just reused. */
  drain: ((samples: BatchSamples) => void) | null = null;

  record(shard: number, size: number, seconds: number): void {
    if (this.length === SAMPLE_CAPACITY) {
      this.drain?.(this);
      this.length = 0;
    }
    const i = this.length++;
    this.shard[i] = shard;
    this.size[i] = size;
    this.seconds[i] = seconds;
  }
}

/** The replies the router handed to connections, by kind, as plain numbers read at scrape time. */
export class ReplyCounters {
  /** LOGIN's message count. */
  loginCount = 0;
  messageSent = 0;
  messageFailed = 0;
  /** READ that handed out a message, and READ ERROR (an empty mailbox). */
  readMessage = 0;
  readError = 0;
  /** Commands that got no answer (their shard was lost, their mailbox is damaged, the store failed): their connections were dropped. */
  aborted = 0;
  /** Batches a shard had not answered stallMs after they were sent (each logged as PH_ERR_SHARD_STALLED). */
  stalls = 0;
  readonly batches = new BatchSamples();

  /** Counts the reply `source[start, end)` to a command of kind `op`. */
  reply(op: ShardOp, source: Buffer, start: number, end: number): void {
    if (op === OP_COUNT) this.loginCount++;
    else if (op === OP_COMPOSE) {
      if (end - start === REPLY_MESSAGE_SENT.length) this.messageSent++;
      else this.messageFailed++;
    } else if (end - start === REPLY_READ_ERROR.length && source.indexOf(LF, start) === end - 1) {
      // A message reply has two LFs (after the sender, after the message); READ ERROR one.
      this.readError++;
    } else {
      this.readMessage++;
    }
  }
}
