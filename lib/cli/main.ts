#!/usr/bin/env node
// The `pigeonhole` command. The process is the CLI's own, so it keeps V8's young
// generation small (see young-generation.ts), and does so before anything else loads:
// loading the server's modules alone grows it from 1 to 8 MiB, which RSS then carries for
// good (3.9 MiB more to hold 10^6 messages in bench:memory, bench/RESULTS.md).
import { keepYoungGenerationSmall } from '../util/young-generation.js';

keepYoungGenerationSmall();
await import('./dispatch.js');
