import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { ListenOptions, Server as NetServer } from 'node:net';
import { AcceptorError } from '../errors.js';
import type { ListenTarget } from './messages.js';

/**
 * How several threads of one process accept on one TCP port.
 *
 * With SO_REUSEPORT (Node 22.12 and 23.1 on, `listen({ reusePort: true })`) each thread
 * binds a socket of its own to the port and the kernel spreads new connections over
 * them by a hash of their addresses.
 *
 * Node 20 has no reusePort, but on Linux a thread can listen on a descriptor of the
 * listening socket (`listen(handle)`). It must be a descriptor of its own: a thread that
 * ends closes its handles, and closing the listening thread's descriptor would close
 * the socket under every other thread (libuv then aborts the process). Node has no
 * dup(); a descriptor can be passed between processes, though, and arrives as a new
 * one. So the thread starts a short-lived child process with the listening descriptor
 * as its fd 3, and the child sends it straight back over the IPC channel as a bare
 * handle (no server of the child's ever accepts on it). The copy that arrives belongs
 * to the thread, and closes with it alone. It costs a Node process start (about 0.1 s)
 * each time an acceptor thread starts.
 */

/** Whether this Node binds several sockets to one port (`reusePort`: 22.12+, 23.1+). */
export function hasReusePort(version: string = process.versions.node): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
}

/** Why several acceptor threads cannot work on this platform, or null when they can. */
export function acceptorsUnsupported(platform: NodeJS.Platform = process.platform): string | null {
  if (platform === 'linux') return null;
  return `several acceptor threads need Linux (this is ${platform}): they share the listening socket through Linux's descriptors and SO_REUSEPORT's load balancing; use acceptors: 1 here`;
}

/** How the further acceptor threads will accept: on their own sockets when Node can bind them, else on the listening one. */
export function sharingMode(): ListenTarget['kind'] {
  return hasReusePort() ? 'reuse-port' : 'descriptor';
}

/** Listen options that let other threads bind the same port, in 'reuse-port' mode. */
export function reusePortOptions(port: number, host: string): ListenOptions {
  // reusePort is not in Node 20's types; Node 22.12+ takes it.
  return { port, host, reusePort: true } as ListenOptions;
}

/** The listening socket's descriptor (Node has no public API for it; libuv's handle knows). */
export function listeningDescriptor(server: NetServer): number {
  const fd = (server as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new AcceptorError('PH_ERR_ACCEPTOR_START_FAILED', 'the listening socket has no descriptor to share with the acceptor threads');
  return fd;
}

// Runs in the child: a socket object over fd 3 that neither reads nor writes, so that
// only its handle is sent (a listening net.Server would accept connections itself).
const CHILD = `
const { Socket } = require('node:net');
const listener = new Socket({ fd: 3, readable: false, writable: false });
process.send('listener', listener._handle, () => process.exit(0));
`;

const TAKE_TIMEOUT_MS = 15_000;

/**
 * A handle of the calling thread's own over the listening socket `fd` (see above), for
 * `server.listen(handle)`.
 */
export function takeListeningHandle(fd: number): Promise<object> {
  return new Promise((resolve, reject) => {
    // The child is plain Node: no loader or preload of the parent's.
    const env = { ...process.env };
    delete env.NODE_OPTIONS;
    const child = spawn(process.execPath, ['-e', CHILD], { stdio: ['ignore', 'ignore', 'pipe', fd, 'ipc'], env });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (text: string) => (stderr += text.slice(0, 2_000)));
    const fail = (why: string): void => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new AcceptorError('PH_ERR_ACCEPTOR_START_FAILED', `could not take a descriptor of the listening socket: ${why}`));
    };
    const timer = setTimeout(() => fail(`no answer from the helper process within ${TAKE_TIMEOUT_MS} ms`), TAKE_TIMEOUT_MS);
    child.once('error', (err) => fail(err.message));
    child.once('message', (_message: unknown, handle: unknown) => {
      clearTimeout(timer);
      if (handle === undefined || handle === null) reject(new AcceptorError('PH_ERR_ACCEPTOR_START_FAILED', 'the helper process sent no descriptor'));
      else resolve(handle as object);
    });
    child.once('exit', (code, signal) => {
      if (child.exitCode !== 0 || signal !== null) fail(`the helper process exited (${signal ?? `code ${code}`}): ${stderr.trim()}`);
    });
  });
}

/** Starts `server` accepting on the server's port as `target` says; resolves once it listens. */
export async function listenShared(server: NetServer, target: ListenTarget): Promise<void> {
  const listening = once(server, 'listening');
  if (target.kind === 'reuse-port') server.listen(reusePortOptions(target.port, target.host));
  else server.listen(await takeListeningHandle(target.fd));
  await listening;
}
