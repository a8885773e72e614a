import { MemoryStore } from '../../lib/store/memory.js';
import { storeContract } from './store.contract.js';

storeContract('memory', (limits) => new MemoryStore(limits));
