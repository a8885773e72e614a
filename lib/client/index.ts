export { Client, type ClientStatus, type ReadResult, connect } from './client.js';
export { type ConnectOptions, DEFAULT_CLIENT_HOST, DEFAULT_CLIENT_PORT, DEFAULT_CLIENT_TIMEOUT_MS } from './validate.js';
