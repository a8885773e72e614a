#!/usr/bin/env bash
# How pigeonhole scales across cores, for a machine with 8 to 16 cores: acceptor threads
# 1/2/4/8 x worker shards 1/2/4/8 (16 rows, mailboxes in memory), next to redis-server
# with io-threads off (1) and 4, the same load for all. The server processes (and Redis)
# run on the first cores, the load generator's threads on the last quarter (at least 2),
# so neither takes the other's cores. Writes JSON and an SVG chart; takes about 4 minutes
# (18 rows of 2 s warm-up, 6 s measured, start, drain and stop), well under 8.
#
#   bench/scaling.sh                 # results in bench/out/scaling-<time>.json and .svg
#   OUT=/tmp/run bench/scaling.sh    # /tmp/run.json and /tmp/run.svg
#
# Knobs (environment): ACCEPTORS, SHARDS, IO_THREADS (lists), CONNECTIONS, PIPELINE,
# DURATION, WARMUP, GENERATOR_CPUS (a count); FORCE=1 runs on fewer than 8 cores (to
# try the script, not to measure). Needs Linux (taskset), Node and npm install done, and
# redis-server on PATH for the Redis rows (apt-get install redis-server).
set -euo pipefail
cd "$(dirname "$0")/.."

cores=$(nproc)
if [ "$cores" -lt 8 ] && [ "${FORCE:-0}" != 1 ]; then
  echo "scaling.sh: made for 8 to 16 cores, this machine has $cores (FORCE=1 runs it anyway)" >&2
  exit 2
fi
generator=${GENERATOR_CPUS:-$(( cores / 4 > 2 ? cores / 4 : 2 ))}
if [ "$generator" -ge "$cores" ]; then generator=1; fi
last_server=$(( cores - generator - 1 ))
server_cpus="0-$last_server"
generator_cpus="$(( last_server + 1 ))-$(( cores - 1 ))"
out=${OUT:-bench/out/scaling-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$(dirname "$out")"
redis=()
if command -v redis-server >/dev/null 2>&1; then
  redis=(--redis --redis-io-threads "${IO_THREADS:-1,4}")
else
  echo "scaling.sh: redis-server is not on PATH: no Redis rows" >&2
fi

echo "scaling.sh: $cores cores: servers on $server_cpus, $generator generator thread(s) on $generator_cpus" >&2
# The harness (and its generator threads) on the generator's cores; --server-cpus pins
# each server process (taskset) to the others.
taskset -c "$generator_cpus" npm run --silent bench -- \
  --acceptors "${ACCEPTORS:-1,2,4,8}" --shards "${SHARDS:-1,2,4,8}" "${redis[@]}" \
  --connections "${CONNECTIONS:-400}" --pipeline "${PIPELINE:-16}" \
  --duration "${DURATION:-6}" --warmup "${WARMUP:-2}" \
  --threads "$generator" --server-cpus "$server_cpus" \
  --json "$out.json" --chart "$out.svg"
