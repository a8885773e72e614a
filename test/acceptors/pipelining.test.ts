// The pipelining tests of test/server/pipelining.test.ts again, word for word, with two
// acceptor threads in front of two worker shards (see rerun.setup.ts, imported first):
// replies in order across shards and protocol errors mid-pipeline, on either thread.
import './rerun.setup.js';
import '../server/pipelining.test.js';
