#!/usr/bin/env bash
# Runs every test of the project: unit and property tests, the storage conformance suite and
# the black-box API tests on SQLite *and* PostgreSQL, and the CLI tests of the real binary.
# Starts (or installs) PostgreSQL when it is not running, and installs the OpenTelemetry
# Python SDK (PyPI) that the OTLP tests send spans with, and nats-server (Debian) for the
# event-bus tests, SoftHSM2 (Debian) with a fresh token for the PKCS#11 key-provider tests,
# and s3s-fs (crates.io) as the S3 server of the object-store tests.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh

ensure_rust
ensure_postgres
ensure_nats
ensure_otel_python
ensure_softhsm
ensure_s3
ensure_chromium
drop_test_databases
trap drop_test_databases EXIT

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${HOME:-/root}/.cache/llmgov-target}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
export RUST_BACKTRACE=${RUST_BACKTRACE:-1}

echo "== cargo test (SQLite and PostgreSQL at $(echo "$LLMGOV_TEST_PG_URL" | sed 's#//[^@]*@#//***@#'))"
log=$(mktemp)
set +e
cargo test --workspace --all-features --locked "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# cargo's last line is often a doc-test run of 0 tests; close with the whole count.
passed=$(grep -Eo 'test result: [A-Za-z]+\. [0-9]+ passed' "$log" | awk '{s += $4} END {print s + 0}')
failed=$(grep -Eo '; [0-9]+ failed;' "$log" | awk '{s += $2} END {print s + 0}')

# The web UI: unit and component tests (Vitest), the build (type-checked against the OpenAPI
# document), then the end-to-end suite in headless Chromium against the binary just built.
if [ "$status" = 0 ] && [ $# = 0 ]; then
    echo "== web UI: vitest, build, end-to-end (Chromium)"
    set +e
    (
        set -e
        node_ok || { echo "Node.js 20+ and npm are required for the web UI tests"; exit 1; }
        ensure_web_deps
        cd web
        npx vitest run --reporter=dot
        npm run build --silent
        LLMGOV_BIN="$CARGO_TARGET_DIR/debug/llmgov" npx playwright test --reporter=list
    ) 2>&1 | tee "$log"
    web_status=${PIPESTATUS[0]}
    set -e
    wp=$( (grep -Eo 'Tests +[0-9]+ passed' "$log" || true) | awk '{s += $2} END {print s + 0}')
    ep=$( (grep -Eo '^ +[0-9]+ passed' "$log" || true) | awk '{s += $1} END {print s + 0}')
    wf=$( (grep -Eo '^ +[0-9]+ failed' "$log" || true) | awk '{s += $1} END {print s + 0}')
    passed=$((passed + wp + ep))
    failed=$((failed + wf))
    [ "$web_status" = 0 ] || { status=$web_status; [ "$wf" -gt 0 ] || failed=$((failed + 1)); }
fi
rm -f "$log"
echo "summary: $passed passed, $failed failed"
exit "$status"
