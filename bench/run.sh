#!/usr/bin/env bash
# One command for the whole benchmark: sioadapter vs @socket.io/redis-adapter (node-redis v5).
# Usage: bash bench/run.sh   (knobs: BENCH_* environment variables, see bench/README.md)
# Installs bench/'s own npm dependencies (package-lock.json), makes sure a Redis answers
# (REDIS_URL, else 127.0.0.1:6379, else a private redis-server), then runs bench/bench.js, which
# prints the table and writes it to bench/RESULTS.md, and bench/rooms.js (per-room subscriptions:
# Redis's outbound bytes, on a private redis-server), which appends its table, and bench/flood.js
# (10 KB floods at several paces: where Redis cuts a subscriber off), which writes its section.
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
# The Rust emitter's rate (examples/emitter_bench); incremental when it is built already.
(cd "$root" && cargo build --release --quiet --example emitter_bench >&2)
[[ -d "$root/npm/node_modules" ]] || (cd "$root/npm" && npm ci --no-audit --no-fund --loglevel=error >&2)
(cd "$root/bench" && npm ci --no-audit --no-fund --loglevel=error >&2)
cd "$root"
BENCH_ENTRY="bash bench/run.sh" node bench/bench.js
[[ "${BENCH_ROOMS:-200}" == 0 ]] || node bench/rooms.js
[[ "${BENCH_FLOOD_N:-10000}" == 0 ]] || node bench/flood.js
