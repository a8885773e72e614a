// A TLS handshake flood from one address: how long one user's COMPOSE+READ round trip
// takes while N connections from the same address each open a TLS connection, finish
// the handshake and close it, over and over, for each --max-connection-rate-per-ip
// asked for (0: no limit).
//
//   npm run bench:handshakes -- [--attackers 32] [--rates 0,256,64,16] [--duration 3]
//                               [--shards 1] [--json FILE]
//
// A handshake costs the server about 0.6 ms of CPU (ECDHE and a P-256 signature), so
// without a rate limit a flood takes as much of a core as the flooder's own CPU allows. The user and
// the flood come from 127.0.0.1; the user is let in before the flood starts. The flood
// runs in a child process of its own (so the user's replies do not wait behind its
// callbacks), on the same cores as the server: a real one would come from elsewhere and
// could go faster. The first row is the user alone. pigeonhole runs compiled (dist/), in memory, over TLS
// with a certificate made with openssl for the run.
import { fork } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { type TLSSocket, connect } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { integerFlag } from '../lib/cli/flags.js';
import { MAX_SHARDS } from '../lib/options.js';
import { type TestCertificates, makeTestCertificates } from '../test/helpers/certs.js';
import { type UserTimes, interactiveUser, pigeonholeUser } from './load/interactive-user.js';
import { describeMachine, formatMachine } from './machine.js';
import { procCpuMicros } from './proc.js';
import { startServe } from './serve-process.js';

const USAGE = 'Usage: npm run bench:handshakes -- [--attackers N] [--rates 0,256,64,16] [--duration SECONDS] [--shards N] [--json FILE]';
// The flood starts before the user is timed, so it meets it at full flow.
const RAMP_MS = 500;

const { values } = parseArgs({
  options: {
    attackers: { type: 'string', default: '32' },
    rates: { type: 'string', default: '0,256,64,16' },
    duration: { type: 'string', default: '3' },
    shards: { type: 'string', default: '1' },
    json: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
    // Internal: run as the flood's child process against this port.
    'flood-port': { type: 'string' },
  },
});
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const attackers = integerFlag('attackers', values.attackers, 1, 1_000) as number;
const rates = (values.rates ?? '').split(',').map((n) => integerFlag('rates', n, 0, 10_000_000) as number);
const durationMs = (integerFlag('duration', values.duration, 1, 600) as number) * 1000;
const shards = integerFlag('shards', values.shards, 0, MAX_SHARDS) as number;

const tlsTo = (port: number, ca: Buffer): TLSSocket => connect({ port, host: '127.0.0.1', servername: 'localhost', ca });

interface Tally {
  handshakes: number;
  refused: number;
}

/** One flooding loop: a connection, its handshake, its close, again, until stopped. */
async function floodLoop(port: number, ca: Buffer, tally: Tally, stopped: () => boolean): Promise<void> {
  while (!stopped()) {
    await new Promise<void>((resolve) => {
      const socket = tlsTo(port, ca);
      socket.once('secureConnect', () => {
        tally.handshakes++;
        socket.destroy();
      });
      // Turned away before the handshake: closed (or reset) with nothing said.
      socket.once('error', () => {});
      socket.once('close', () => {
        if (!socket.authorized) tally.refused++;
        resolve();
      });
    });
  }
}

/**
 * The flood's child process: `attackers` loops against `port` until its parent says
 * 'mark' (it answers with the counts so far) and then 'stop' (the counts again, and it
 * exits).
 */
async function floodChild(port: number, ca: Buffer): Promise<void> {
  let stop = false;
  const tally: Tally = { handshakes: 0, refused: 0 };
  process.on('message', (message) => {
    if (message === 'stop') stop = true;
    process.send?.({ ...tally });
  });
  await Promise.all(Array.from({ length: attackers }, () => floodLoop(port, ca, tally, () => stop)));
  process.send?.({ ...tally }, () => process.exit(0));
}

/** Starts the flood in a child process; `mark()` and `stop()` return its counts at that moment. */
function startFlood(port: number, caFile: string): { mark(): Promise<Tally>; stop(): Promise<Tally> } {
  const child = fork(new URL(import.meta.url).pathname, ['--flood-port', String(port), '--attackers', String(attackers)], { env: { ...process.env, FLOOD_CA: caFile } });
  const ask = (what: 'mark' | 'stop'): Promise<Tally> =>
    new Promise((resolve) => {
      child.once('message', (tally) => resolve(tally as Tally));
      child.send(what);
    });
  return { mark: () => ask('mark'), stop: () => ask('stop') };
}

interface Row {
  /** null: no flood, the user alone. */
  readonly maxConnectionRatePerIp: number | null;
  readonly attackers: number;
  readonly handshakesPerSecond: number;
  readonly refusedPerSecond: number;
  /** The server process's CPU while the user was timed, in % of one core; null without /proc. */
  readonly serverCpuPercent: number | null;
  readonly user: UserTimes;
}

async function measure(certs: TestCertificates, rate: number | null): Promise<Row> {
  const limit = rate ?? 0;
  const served = await startServe(['--memory', '--shards', String(shards), '--tls-cert', certs.server.certFile, '--tls-key', certs.server.keyFile, '--max-connection-rate-per-ip', String(limit)]);
  try {
    const userSocket = tlsTo(served.port, certs.ca);
    await once(userSocket, 'secureConnect');
    const flood = rate === null ? null : startFlood(served.port, certs.caFile);
    await sleep(RAMP_MS);
    const before = (await flood?.mark()) ?? { handshakes: 0, refused: 0 };
    const cpuBefore = procCpuMicros(served.pid);
    const started = performance.now();
    let user: UserTimes;
    let after: Tally;
    try {
      user = await interactiveUser(userSocket, pigeonholeUser('pigeonhole'), 'user', durationMs);
    } finally {
      after = (await flood?.stop()) ?? before;
    }
    const seconds = (performance.now() - started) / 1000;
    const cpuAfter = procCpuMicros(served.pid);
    const serverCpuPercent = cpuBefore === null || cpuAfter === null ? null : Math.round((cpuAfter - cpuBefore) / seconds / 1e4);
    const handshakesPerSecond = Math.round((after.handshakes - before.handshakes) / seconds);
    const refusedPerSecond = Math.round((after.refused - before.refused) / seconds);
    return { maxConnectionRatePerIp: rate, attackers: rate === null ? 0 : attackers, handshakesPerSecond, refusedPerSecond, serverCpuPercent, user };
  } finally {
    await served.stop();
  }
}

if (values['flood-port'] !== undefined) {
  await floodChild(Number(values['flood-port']), readFileSync(process.env.FLOOD_CA as string));
} else {
  const certs = makeTestCertificates();
  try {
    console.log(`bench:handshakes, ${new Date().toISOString()}`);
    console.log(`machine: ${formatMachine(describeMachine())}`);
    console.log(`load: ${attackers} connections from 127.0.0.1 open a TLS connection, finish the handshake and close it, over and over; one user sends a pair at a time, 5 ms apart, for ${durationMs / 1000} s; ${shards} shard(s)`);
    const rows: Row[] = [await measure(certs, null)];
    for (const rate of rates) rows.push(await measure(certs, rate));
    console.log('\n| --max-connection-rate-per-ip | handshakes/s | refused/s | server CPU | user round trips | p50 ms | p99 ms | max ms |');
    console.log('| --: | --: | --: | --: | --: | --: | --: | --: |');
    for (const row of rows) {
      const { user } = row;
      const limit = row.maxConnectionRatePerIp === null ? 'no flood' : row.maxConnectionRatePerIp === 0 ? '0 (no limit)' : row.maxConnectionRatePerIp;
      console.log(`| ${limit} | ${row.handshakesPerSecond.toLocaleString('en-US')} | ${row.refusedPerSecond.toLocaleString('en-US')} | ${row.serverCpuPercent === null ? '' : `${row.serverCpuPercent}%`} | ${user.roundTrips} | ${user.p50} | ${user.p99} | ${user.max} |`);
    }
    if (values.json !== undefined) writeFileSync(values.json, `${JSON.stringify({ machine: describeMachine(), attackers, durationMs, shards, rows }, null, 2)}\n`);
  } finally {
    certs.remove();
  }
}
