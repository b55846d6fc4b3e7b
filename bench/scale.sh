#!/usr/bin/env bash
# Growth curves: sioadapter vs @socket.io/redis-adapter (node-redis v5) as the cluster grows
# (nodes 2 → 4 → 8, rooms 10 → 10,000), classic and sharded adapters, in one run.
# Usage: bash bench/scale.sh   (knobs: BENCH_SCALE_* environment variables, see bench/README.md;
# BENCH_SCALE_QUICK=1 for a smoke test of about a minute)
# Installs bench/'s own npm dependencies (package-lock.json), builds the addon only if it is
# missing, then runs bench/scale.js, which starts its own private redis-server (so that Redis's
# byte counters count nothing else), writes bench/scale/*.svg and the "## Growth curves" section
# of bench/RESULTS.md. Every process it starts is killed when it ends, fails or gets Ctrl-C.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# For the install hints; no shared Redis is used (ensure_redis is not called): scale.js needs a
# private redis-server, whose INFO counters nothing else touches.
source "$root/test/redis.sh"
command -v redis-server >/dev/null 2>&1 || { echo "redis-server is not installed: install it (Debian/Ubuntu: apt-get install redis-server; Redis 7+ for the sharded adapter) and retry." >&2; exit 1; }
# The addon is built only when missing (a fresh clone); `node npm/scripts/build.js` rebuilds it.
node "$root/npm/scripts/build.js" --if-missing >&2
[[ -d "$root/npm/node_modules" ]] || (cd "$root/npm" && npm ci --no-audit --no-fund --loglevel=error >&2)
(cd "$root/bench" && npm ci --no-audit --no-fund --loglevel=error >&2)
cd "$root"
BENCH_ENTRY="bash bench/scale.sh" exec node bench/scale.js
