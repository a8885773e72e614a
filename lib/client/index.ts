export { Client, type ClientStatus, type ReadResult, connect } from './client.js';
export { type ConnectOptions, DEFAULT_CLIENT_TIMEOUT_MS } from './options.js';
