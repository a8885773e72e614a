// The per-address taker's entry: under tsx on Node 20 a worker's ESM entry gets no loader
// hooks, but require() gets tsx's CommonJS hook (as in ring-echo-entry.cjs).
require('./per-ip-taker.ts').start(require('node:worker_threads').workerData);
