// The protocol tests of protocol.test.ts again, word for word, with mailboxes in a real
// 3-master Redis Cluster (see protocol-redis.setup.ts, which must be imported first).
import './protocol-redis.setup.js';
import './protocol.test.js';
