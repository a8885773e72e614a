// The echo thread's entry: under tsx on Node 20 a worker's ESM entry gets no loader
// hooks, but require() gets tsx's CommonJS hook (as in bench/load/worker-entry.cjs).
require('./ring-echo.ts').start(require('node:worker_threads').workerData);
