#!/usr/bin/env bash
# Web UI performance (web UI issue): builds the UI and the release binary, starts
# `llmgov serve --demo` on a random port, and prints the JavaScript shipped for the first
# screen, the time until the overview is interactive in Chromium (cold and warm cache), and
# how the audit log behaves with 10,000 entries. Prints figures; asserts nothing about speed.
# Usage: scripts/bench-web.sh   (LLMGOV_BIN=... to use another binary)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh
ensure_rust
ensure_chromium
node_ok || { echo "Node.js 20+ and npm are required" >&2; exit 1; }
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${HOME:-/root}/.cache/llmgov-target}
if [ -z "${LLMGOV_BIN:-}" ]; then
    cargo build --release --locked -p llmgov >&2
    export LLMGOV_BIN=$CARGO_TARGET_DIR/release/llmgov
fi
ensure_web_deps
cd web
npm run build --silent
npm run perf --silent
