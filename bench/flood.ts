// A pipelined flood of one kind of command over one connection, for the benchmarks that
// fill a server (bench/memory.ts, bench/durable.ts): pigeonhole and Redis alike, since
// both answer each command with a known number of lines.
import { once } from 'node:events';
import { connect } from 'node:net';

export interface FloodOptions {
  readonly port: number;
  /** Sent first, answered by `greetingLines` lines that are not counted (a LOGIN). */
  readonly greeting?: Buffer;
  readonly greetingLines?: number;
  /** Commands to send. */
  readonly count: number;
  /** The i-th command's bytes. */
  command(i: number): Buffer;
  /** Lines in each answer (1 for MESSAGE SENT or `:n`, 2 for a READ's sender and message). */
  readonly linesPerReply: number;
  /** Commands in flight at most. */
  readonly pipeline: number;
  /** True when an answer's first line is the expected one; the flood fails otherwise. */
  accept(firstLine: string): boolean;
}

/** Sends every command, `pipeline` at a time; resolves with how many answers `accept` took. */
export async function flood(options: FloodOptions): Promise<number> {
  const { count, pipeline, linesPerReply } = options;
  const socket = connect({ port: options.port, host: '127.0.0.1', noDelay: true });
  await once(socket, 'connect');
  let skip = options.greetingLines ?? 0;
  let sent = 0;
  let answered = 0;
  let accepted = 0;
  let lineInReply = 0;
  let pending = '';
  try {
    await new Promise<void>((resolve, reject) => {
      const sendMore = (): void => {
        const chunks: Buffer[] = [];
        while (sent < count && sent - answered < pipeline) chunks.push(options.command(sent++));
        if (chunks.length > 0) socket.write(Buffer.concat(chunks));
      };
      const onLine = (line: string): void => {
        if (skip > 0) {
          skip--;
          return;
        }
        if (lineInReply === 0) {
          if (options.accept(line)) accepted++;
          else if (!/^(MESSAGE FAILED|READ ERROR)$/.test(line)) reject(new Error(`unexpected answer ${JSON.stringify(line.slice(0, 80))}`));
        }
        // A READ ERROR (or Redis's nil) is one line, whatever linesPerReply says.
        const short = line === 'READ ERROR' || line === '$-1' || line === '_' || line === 'MESSAGE FAILED';
        lineInReply = short ? 0 : (lineInReply + 1) % linesPerReply;
        if (lineInReply === 0) answered++;
      };
      socket.on('data', (chunk: Buffer) => {
        pending += chunk.toString('latin1');
        let lf = pending.indexOf('\n');
        while (lf !== -1) {
          onLine(pending.slice(0, lf).replace(/\r$/, ''));
          pending = pending.slice(lf + 1);
          lf = pending.indexOf('\n');
        }
        if (answered === count) resolve();
        else sendMore();
      });
      socket.on('error', reject);
      socket.on('close', () => reject(new Error(`connection closed after ${answered} of ${count} answers`)));
      if (options.greeting !== undefined) socket.write(options.greeting);
      sendMore();
      if (count === 0 && skip === 0) resolve();
    });
  } finally {
    socket.destroy();
  }
  return accepted;
}
