// Imported by the acceptors' rerun files before the file they run again, so it runs
// first: every server of that file gets two acceptor threads and two worker shards
// (acceptors need worker shards: the inline-shard cases run on two shards instead).
import { adjustServerOptions, onlyShardCounts } from '../helpers/server.js';

onlyShardCounts([2]);
adjustServerOptions((options) => ({ ...options, acceptors: 2, shards: options.shards === 0 ? 2 : options.shards }));
