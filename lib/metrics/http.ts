import { once } from 'node:events';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { errorMessage } from '../errors.js';

/** How the server is doing, for /healthz. */
export interface Health {
  /** Every shard is ready and the server is running. */
  readonly ok: boolean;
  /** 'ok', or why not: 'starting', 'shard 1 is not ready', 'closing', ... */
  readonly status: string;
}

/** What the endpoint serves: the server's registry and its health. */
export interface MetricsTarget {
  readonly metrics: Registry;
  health(): Health;
}

export interface MetricsEndpoint {
  readonly address: AddressInfo;
  close(): Promise<void>;
}

/**
 * An HTTP endpoint for monitoring: GET /metrics (Prometheus text format) and GET /healthz
 * (200 "ok" once every shard is ready, 503 with the reason otherwise). Anything else is
 * 404; a method other than GET or HEAD is 405.
 */
export async function serveMetrics(target: MetricsTarget, { host, port }: { host: string; port: number }): Promise<MetricsEndpoint> {
  const server: Server = createServer((request, response) => {
    void answer(target, request, response);
  });
  // A scraper keeps its connection open between scrapes; close() must not wait for it.
  server.keepAliveTimeout = 5_000;
  server.listen(port, host);
  await once(server, 'listening');
  return {
    address: server.address() as AddressInfo,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function answer(target: MetricsTarget, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const path = (request.url ?? '/').split('?')[0];
  if (path !== '/metrics' && path !== '/healthz') return send(response, 404, 'not found: try /metrics or /healthz\n');
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('allow', 'GET, HEAD');
    return send(response, 405, 'method not allowed\n');
  }
  if (path === '/healthz') {
    const health = target.health();
    return send(response, health.ok ? 200 : 503, `${health.status}\n`);
  }
  try {
    const text = await target.metrics.metrics();
    send(response, 200, text, target.metrics.contentType);
  } catch (err) {
    send(response, 500, `cannot collect metrics: ${errorMessage(err)}\n`);
  }
}

function send(response: ServerResponse, status: number, body: string, contentType = 'text/plain; charset=utf-8'): void {
  response.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
  response.end(response.req.method === 'HEAD' ? undefined : body);
}
