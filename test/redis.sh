# Sourced by test/run.sh, examples/demo.sh and .ci/run: makes sure a Redis answers and exports
# REDIS_URL. Uses 127.0.0.1:6379 when it answers; otherwise starts a private redis-server on a
# spare loopback port (stopped when the calling script exits); otherwise says what to install.

redis_answers() { # host port
  local reply
  # The braces keep the redirection of stderr to this one command (a bare `exec 2>...` would
  # silence the calling script for good).
  { exec 9<>"/dev/tcp/$1/$2"; } 2>/dev/null || return 1
  printf 'PING\r\n' >&9
  IFS= read -r -t 2 reply <&9 || true
  exec 9>&- 9<&-
  [[ "$reply" == +PONG* ]]
}

ensure_redis() {
  if [[ -n "${REDIS_URL:-}" ]]; then return 0; fi
  if redis_answers 127.0.0.1 6379; then
    export REDIS_URL=redis://127.0.0.1:6379
    return 0
  fi
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "No Redis answers on 127.0.0.1:6379 and redis-server is not installed: install it (Debian/Ubuntu: apt-get install redis-server) and retry." >&2
    return 1
  fi
  local port dir
  for port in $(seq 6390 6490); do
    if ! redis_answers 127.0.0.1 "$port" && ! (exec 8<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  done
  dir=$(mktemp -d)
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" --daemonize no >"$dir/redis.log" 2>&1 &
  SIO_PRIVATE_REDIS_PID=$!
  trap 'kill "$SIO_PRIVATE_REDIS_PID" 2>/dev/null; wait "$SIO_PRIVATE_REDIS_PID" 2>/dev/null; rm -rf "'"$dir"'"' EXIT
  for _ in $(seq 1 50); do
    redis_answers 127.0.0.1 "$port" && break
    sleep 0.1
  done
  redis_answers 127.0.0.1 "$port" || { echo "redis-server did not start on port $port:" >&2; cat "$dir/redis.log" >&2; return 1; }
  echo "Started a private redis-server on 127.0.0.1:$port (stopped on exit)." >&2
  export REDIS_URL="redis://127.0.0.1:$port"
}

# Builds the addon and installs the npm package's dependencies (idempotent, incremental). Any
# further argument goes to npm/scripts/build.js (`--workspace`: build every crate in that run).
build_addon() {
  local root="$1"
  shift
  command -v cargo >/dev/null 2>&1 || { echo "cargo is missing: install Rust (https://rustup.rs) and retry." >&2; return 1; }
  command -v npm >/dev/null 2>&1 || { echo "npm is missing: install Node.js 18+ and retry." >&2; return 1; }
  node "$root/npm/scripts/build.js" "$@"
  (cd "$root/npm" && npm install --no-audit --no-fund --loglevel=error)
}
