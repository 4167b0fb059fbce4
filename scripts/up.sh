#!/usr/bin/env bash
# Brings the platform up on the embedded defaults: builds the release binary and runs
# `llmgov serve` (SQLite in ./llmgov-data, http://127.0.0.1:8080). Extra arguments are passed
# to `serve`, e.g. `scripts/up.sh --demo` (sample data) or `scripts/up.sh --listen 0.0.0.0:8080`.
# It builds the web UI first (web/build, with Node.js 20+ and npm; without them the server
# says at / how to build it).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh
ensure_rust
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${HOME:-/root}/.cache/llmgov-target}
build_web || true
cargo build --release --locked -p llmgov
exec "$CARGO_TARGET_DIR/release/llmgov" serve "$@"
