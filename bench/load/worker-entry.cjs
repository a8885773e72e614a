// The generator thread's entry. Under tsx on Node 20, a worker thread's ESM entry does not
// get tsx's loader hooks, but require() does get its CommonJS hook (that is also how
// piscina loads workers/shard.ts), so the thread enters here and requires the TypeScript.
require('./worker.ts');
