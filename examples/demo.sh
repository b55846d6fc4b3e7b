#!/usr/bin/env bash
# The demo: two socket.io servers in two processes share a broadcast through Redis.
# Usage: bash examples/demo.sh   (builds the addon and installs what it needs on first run)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/test/redis.sh"
ensure_redis
build_addon "$root" >/dev/null
(cd "$root/examples" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
node "$root/examples/demo.js"
