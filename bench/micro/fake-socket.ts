import { EventEmitter } from 'node:events';

/** Just enough of net.Socket for a Connection; counts what it is asked to write. */
export class FakeSocket extends EventEmitter {
  allowHalfOpen = false;
  writableNeedDrain = false;
  writableLength = 0;
  destroyed = false;
  written = 0;
  setNoDelay(): this {
    return this;
  }
  setTimeout(): this {
    return this;
  }
  pause(): this {
    return this;
  }
  resume(): this {
    return this;
  }
  write(data: Buffer): boolean {
    this.written += data.length;
    return true;
  }
  end(): this {
    return this;
  }
  destroy(): this {
    this.destroyed = true;
    return this;
  }
}
