// The acceptor thread's entry under tsx (development, tests, the bench): on Node 20 a
// worker's ESM entry gets no tsx loader hooks, but require() gets its CommonJS hook (as
// in test/helpers/ring-echo-entry.cjs). Compiled, the thread enters at acceptor.js.
require('./acceptor.ts');
