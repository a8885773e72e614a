// The protocol tests of test/server/protocol.test.ts again, word for word, on a server
// with two acceptor threads in front of two worker shards (see rerun.setup.ts, imported
// first): connections land on either thread.
import './rerun.setup.js';
import '../server/protocol.test.js';
