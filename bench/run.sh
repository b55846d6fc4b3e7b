#!/usr/bin/env bash
# One command for the whole benchmark: sioadapter vs @socket.io/redis-adapter (node-redis v5).
# Usage: bash bench/run.sh   (knobs: BENCH_* environment variables, see bench/README.md)
# Installs bench/'s own npm dependencies (package-lock.json), makes sure a Redis answers
# (REDIS_URL, else 127.0.0.1:6379, else a private redis-server), then runs bench/bench.js, which
# prints the table and writes it to bench/RESULTS.md, then its ~100 B workload with a JSON
# `parser` on both adapters (BENCH_PARSER_N, BENCH_PARSER_ROUNDS), and bench/rooms.js (per-room subscriptions:
# Redis's outbound bytes, on a private redis-server), which appends its table, and bench/flood.js
# (10 KB floods at several paces: where Redis cuts a subscriber off), which writes its section,
# and bench/socketioxide.js (Rust servers: socketioxide with this adapter and with
# socketioxide-redis, beside a Node server), which writes its own.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/test/redis.sh"
# ensure_redis's `exec 9<>/dev/tcp/... 2>/dev/null` also sends this shell's stderr to /dev/null
# for good (a bare `exec` keeps its redirections), so stderr is saved and put back around it.
exec 3>&2
ensure_redis
exec 2>&3 3>&-
# The addon is built only when missing (a fresh clone); `node npm/scripts/build.js` rebuilds it.
node "$root/npm/scripts/build.js" --if-missing >&2
# The Rust emitter's rate (examples/emitter_bench) and the Rust servers (socketioxide_bench);
# incremental when they are built already.
(cd "$root" && cargo build --release --quiet --example emitter_bench >&2)
[[ "${BENCH_SOCKETIOXIDE_ROUNDS:-3}" == 0 ]] || (cd "$root" && cargo build --release --quiet -p sioadapter-socketioxide --example socketioxide_bench >&2)
[[ -d "$root/npm/node_modules" ]] || (cd "$root/npm" && npm ci --no-audit --no-fund --loglevel=error >&2)
(cd "$root/bench" && npm ci --no-audit --no-fund --loglevel=error >&2)
cd "$root"
BENCH_ENTRY="bash bench/run.sh" node bench/bench.js
# What a custom parser costs: the ~100 B workload again, both adapters given a JSON `parser`
# (a section of RESULTS.md of its own).
[[ "${BENCH_PARSER_N:-30000}" == 0 ]] || BENCH_ENTRY="bash bench/run.sh" BENCH_PARSER=json BENCH_ROUNDS="${BENCH_PARSER_ROUNDS:-3}" \
  BENCH_N="${BENCH_PARSER_N:-30000}" BENCH_N_LARGE=0 BENCH_N_BUFFER=0 BENCH_REQUESTS=0 BENCH_BURST=0 \
  BENCH_EMITTER_N=0 BENCH_RUST_EMITTER_N=0 BENCH_RAW_N=0 node bench/bench.js
[[ "${BENCH_ROOMS:-200}" == 0 ]] || node bench/rooms.js
[[ "${BENCH_FLOOD_N:-10000}" == 0 ]] || node bench/flood.js
# Rust socket.io servers: socketioxide with this adapter vs socketioxide-redis vs a Node server.
[[ "${BENCH_SOCKETIOXIDE_ROUNDS:-3}" == 0 ]] || node bench/socketioxide.js
