#!/usr/bin/env bash
# Brings the platform up on the embedded defaults: builds the release binary and runs
# `llmgov serve` (SQLite in ./llmgov-data, http://127.0.0.1:8080). Extra arguments are passed
# to `serve`, e.g. `scripts/up.sh --listen 0.0.0.0:8080`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh
ensure_rust
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${HOME:-/root}/.cache/llmgov-target}
cargo build --release --locked -p llmgov
exec "$CARGO_TARGET_DIR/release/llmgov" serve "$@"
