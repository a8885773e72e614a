// A COMPOSE flood for durability tests: many connections, pipelined, every message
// unique (`<sender>:<seq>`), and a record of exactly which ones the server acknowledged.
import { setTimeout as sleep } from 'node:timers/promises';
import { LineClient } from '../helpers/line-client.js';

export interface FloodOptions {
  /** Where to connect; with several, sender i uses ports[i % ports.length]. */
  readonly port: number | readonly number[];
  readonly senders: number;
  readonly recipients: readonly string[];
  /** Commands written before waiting for their replies. */
  readonly pipeline: number;
  /** Stop after this many messages per sender (a bound even if the server never fails). */
  readonly perSender: number;
  /** Stop early when this resolves (e.g. when the server was killed). */
  readonly stop?: Promise<unknown>;
  /**
   * When the server drops a sender's connection, connect again and go on with the next
   * message (a store outage drops connections whose answer is unknown). Default: that
   * sender stops.
   */
  readonly reconnect?: boolean;
}

export interface FloodResult {
  /** Messages answered MESSAGE SENT, by body. */
  readonly acked: Set<string>;
  /** Messages answered MESSAGE FAILED. */
  readonly failed: Set<string>;
  /** Every message written to a socket, answered or not. */
  readonly sent: Set<string>;
  /** How many connections the server dropped with COMPOSEs unanswered (with `reconnect`). */
  dropped: number;
}

export function recipientOf(body: string, recipients: readonly string[]): string {
  const [sender, seq] = body.split(':');
  return recipients[(Number(sender?.slice(1)) + Number(seq)) % recipients.length] as string;
}

export async function flood(options: FloodOptions): Promise<FloodResult> {
  const result: FloodResult = { acked: new Set(), failed: new Set(), sent: new Set(), dropped: 0 };
  const ports = typeof options.port === 'number' ? [options.port] : options.port;
  let stopped = false;
  void options.stop?.then(() => {
    stopped = true;
  });
  const one = async (index: number): Promise<void> => {
    const sender = `s${index}`;
    const port = ports[index % ports.length] as number;
    let seq = 0;
    for (;;) {
      const client = await LineClient.connect(port);
      const dropped = await session(sender, client, seq, (next) => (seq = next));
      if (!dropped || !options.reconnect || stopped || seq >= options.perSender) return;
      result.dropped++;
      // Not at full speed while the server drops every connection.
      await sleep(20);
    }
  };
  /** One connection's part of a sender's flood; true if the server dropped it. */
  const session = async (sender: string, client: LineClient, from: number, progress: (seq: number) => void): Promise<boolean> => {
    try {
      await client.send(`LOGIN ${sender}\n`);
      await client.readLine();
      for (let seq = from; seq < options.perSender && !stopped; ) {
        const bodies: string[] = [];
        for (let i = 0; i < options.pipeline && seq < options.perSender; i++, seq++) bodies.push(`${sender}:${seq}`);
        let text = '';
        for (const body of bodies) text += `COMPOSE ${recipientOf(body, options.recipients)}\n${body}\n`;
        for (const body of bodies) result.sent.add(body);
        progress(seq);
        await client.send(text);
        for (const body of bodies) {
          const reply = (await client.readLine(10_000)).toString();
          if (reply === 'MESSAGE SENT') result.acked.add(body);
          else if (reply === 'MESSAGE FAILED') result.failed.add(body);
          else throw new Error(`unexpected reply ${JSON.stringify(reply)} to a COMPOSE`);
        }
      }
      return false;
    } catch (err) {
      // The server being killed mid-flood is the point of some tests: stop this sender.
      if (!stopped && !client.closed) throw err;
      return true;
    } finally {
      client.destroy();
    }
  };
  await Promise.all(Array.from({ length: options.senders }, (_, i) => one(i)));
  return result;
}

/** Reads every mailbox empty; returns each recipient's messages in the order READ gave them. */
export async function drain(port: number, recipients: readonly string[]): Promise<Map<string, { from: string; body: string }[]>> {
  const out = new Map<string, { from: string; body: string }[]>();
  for (const user of recipients) {
    const client = await LineClient.connect(port);
    try {
      await client.send(`LOGIN ${user}\n`);
      const count = Number((await client.readLine()).toString());
      const messages: { from: string; body: string }[] = [];
      // Bounded: one READ per counted message, then one that must say READ ERROR.
      await client.send('READ\n'.repeat(count + 1));
      for (let i = 0; i < count; i++) {
        const from = (await client.readLine()).toString();
        const body = (await client.readLine()).toString();
        messages.push({ from, body });
      }
      const last = (await client.readLine()).toString();
      if (last !== 'READ ERROR') throw new Error(`${user}: expected READ ERROR after ${count} messages, got ${JSON.stringify(last)}`);
      out.set(user, messages);
    } finally {
      client.destroy();
    }
  }
  return out;
}

/**
 * What a durable server must guarantee after anything: every acknowledged message is
 * present exactly once, nothing is invented, the sender is right, and each sender's
 * messages to one recipient come out in the order they were sent (FIFO).
 */
export function checkDelivery(
  delivered: Map<string, { from: string; body: string }[]>,
  flooded: FloodResult,
  recipients: readonly string[],
  alsoRead: Iterable<string> = [],
): string[] {
  const problems: string[] = [];
  const seen = new Set<string>(alsoRead);
  for (const [user, messages] of delivered) {
    const lastSeqBySender = new Map<string, number>();
    for (const { from, body } of messages) {
      if (seen.has(body)) problems.push(`${body} delivered twice`);
      seen.add(body);
      if (!flooded.sent.has(body)) problems.push(`${body} was never sent`);
      if (recipientOf(body, recipients) !== user) problems.push(`${body} landed in ${user}'s mailbox`);
      const [sender, seqText] = body.split(':');
      if (from !== sender) problems.push(`${body} shows sender ${from}`);
      const seq = Number(seqText);
      const last = lastSeqBySender.get(from);
      if (last !== undefined && seq <= last) problems.push(`${user}: ${body} came after ${from}:${last} (not FIFO)`);
      lastSeqBySender.set(from, seq);
    }
  }
  for (const body of flooded.acked) if (!seen.has(body)) problems.push(`acknowledged ${body} is missing`);
  return problems;
}
