#!/usr/bin/env bash
# Runs every test: Rust (unit, doc) and JS (real Redis, real socket.io servers and clients,
# mixed clusters with the official adapter). Usage: bash test/run.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
source test/redis.sh
ensure_redis
echo "Redis: $REDIS_URL"
# One cargo run builds the addon, libsioadapter.so and the examples, with the features that
# `cargo test --workspace` below uses (dev-dependencies included), so nothing is built twice.
build_addon "$root" --workspace
(cd test && npm ci --no-audit --no-fund --loglevel=error)

echo "== cargo test"
cargo test --release --workspace
echo "== the core without its default features (tls, sentinel, cluster): builds clean, refuses those URLs clearly"
cargo clippy --release -p sioadapter --no-default-features --lib --tests --quiet -- -D warnings
cargo test --release -p sioadapter --no-default-features --lib
# Sentinel without Cluster is the combination whose shared code (the locator) each cfg must keep
# alive; the others are the default and none above.
echo "== the core with \`sentinel\` but not \`cluster\`: builds clean"
cargo clippy --release -p sioadapter --no-default-features --features sentinel --lib --quiet -- -D warnings
echo "== cargo fmt --check, cargo clippy (warnings are errors)"
cargo fmt --all --check
cargo clippy --release --workspace --all-targets --quiet -- -D warnings
echo "== cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -p sioadapter --quiet

echo "== node tests"
node --test --test-concurrency=2 --test-timeout=300000 test/*.test.js
