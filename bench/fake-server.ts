// A small in-memory stand-in for pigeonhole or Redis with a chosen flaw, so the smoke
// test can show the harness catches a fast wrong server. It is not the real server and
// checks nothing: it only has to be right, or wrong in exactly the chosen way.
import { once } from 'node:events';
import { type Server, type Socket, createServer } from 'node:net';

export type FakeFlaw =
  /** Behaves. */
  | 'none'
  /** Answers MESSAGE SENT but stores nothing. */
  | 'forget'
  /** Hands out messages with their last byte changed. */
  | 'corrupt'
  /** Hands out each message twice before removing it. */
  | 'duplicate'
  /** Stores each message in the sender's mailbox instead of the recipient's. */
  | 'misroute'
  /** Answers COMPOSE with a line the protocol does not have. */
  | 'garbage'
  /** Stops answering anything after its first HANG_AFTER lines, keeping connections open. */
  | 'hang';

// Lines the 'hang' fake takes before it falls silent: fewer than any load's first
// pipelines bring (the smoke test's 6 connections send a LOGIN and 4 commands each at
// once), so it falls silent during the run however slowly a loaded machine drives it.
const HANG_AFTER = 20;

export interface FakeServerOptions {
  readonly dialect: 'pigeonhole' | 'redis';
  readonly flaw: FakeFlaw;
}

export interface FakeServer {
  readonly port: number;
  close(): Promise<void>;
}

interface Stored {
  sender: string;
  body: string;
  handedOut: number;
}

export async function startFakeServer(options: FakeServerOptions): Promise<FakeServer> {
  const mailboxes = new Map<string, Stored[]>();
  const sockets = new Set<Socket>();
  const mailbox = (user: string): Stored[] => {
    let box = mailboxes.get(user);
    if (box === undefined) mailboxes.set(user, (box = []));
    return box;
  };
  const take = (user: string): Stored | undefined => {
    const box = mailbox(user);
    const first = box[0];
    if (first === undefined) return undefined;
    first.handedOut++;
    if (options.flaw !== 'duplicate' || first.handedOut === 2) box.shift();
    return first;
  };
  const bodyOut = (body: string): string => (options.flaw === 'corrupt' ? `${body.slice(0, -1)}${body.endsWith('!') ? '?' : '!'}` : body);
  const store = (sender: string, recipient: string, body: string): void => {
    if (options.flaw === 'forget') return;
    mailbox(options.flaw === 'misroute' ? sender : recipient).push({ sender, body, handedOut: 0 });
  };

  let answered = 0;
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let user = '';
    let composeTo: string | null = null;
    let rest = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop() ?? '';
      let out = '';
      for (const raw of lines) {
        if (options.flaw === 'hang' && ++answered > HANG_AFTER) return;
        if (options.dialect === 'redis') {
          const [command, key = '', value = ''] = raw.replace(/\r$/, '').split(' ');
          if (command === 'RPUSH') {
            store('', key, value);
            out += `:${mailbox(key).length}\r\n`;
          } else if (command === 'LPOP') {
            const message = take(key);
            out += message === undefined ? '$-1\r\n' : `$${message.body.length}\r\n${bodyOut(message.body)}\r\n`;
          } else if (command === 'LLEN') {
            out += `:${mailbox(key).length}\r\n`;
          } else {
            out += '-ERR unknown command\r\n';
          }
        } else if (composeTo !== null) {
          store(user, composeTo, raw);
          composeTo = null;
          out += options.flaw === 'garbage' ? 'OK\n' : 'MESSAGE SENT\n';
        } else if (raw.startsWith('LOGIN ')) {
          user = raw.slice(6);
          out += `${mailbox(user).length}\n`;
        } else if (raw.startsWith('COMPOSE ')) {
          composeTo = raw.slice(8);
        } else if (raw === 'READ') {
          const message = take(user);
          out += message === undefined ? 'READ ERROR\n' : `${message.sender}\n${bodyOut(message.body)}\n`;
        } else {
          socket.end();
          return;
        }
      }
      if (out !== '') socket.write(out, 'latin1');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
