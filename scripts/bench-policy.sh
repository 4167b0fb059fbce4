#!/usr/bin/env bash
# Load benchmark of the guardrail call (issue: governance policies).
#
# With 20 active policies (the 12 templates and 8 more copies), measures
# `POST /api/v1/policies/evaluate` against the trivial route of the same server
# (`GET /health/live`) with wrk at 64 connections, on SQLite and PostgreSQL, and prints
# throughput, p50/p99 latency and their ratio. Every evaluation is recorded and audited, as
# in production. wrk (Debian package) is installed when missing.
#
# Usage: scripts/bench-policy.sh [seconds-per-route, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh
ensure_rust
command -v wrk >/dev/null || apt_install wrk
ensure_postgres

DURATION=${1:-10}
CONNS=64
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${HOME:-/root}/.cache/llmgov-target}
cargo build --release --locked -p llmgov >&2
BIN=$CARGO_TARGET_DIR/release/llmgov
PORT=18182
BASE=http://127.0.0.1:$PORT
WORK=$(mktemp -d)
SERVER_PID=

cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    rm -rf "$WORK"
    drop_test_databases
}
trap cleanup EXIT

json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

parse_wrk() {
    python3 -c '
import re, sys
out = sys.stdin.read()
def ms(v):
    n, unit = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
p50 = ms(re.search(r"\s50%\s+(\S+)", out).group(1))
p99 = ms(re.search(r"\s99%\s+(\S+)", out).group(1))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
if errors: sys.exit("non-2xx responses during the run: " + errors.group(1))
print(f"{rps:.0f} {p50:.2f} {p99:.2f}")
'
}

run_backend() {
    local name=$1 url=$2
    LLMGOV_LOG=warn LLMGOV_ADMIN_PASSWORD=Bench-password-123 LLMGOV_DATABASE__URL=$url \
        "$BIN" serve --data-dir "$WORK/$name" --listen 127.0.0.1:$PORT >/dev/null 2>&1 &
    SERVER_PID=$!
    wait_for 30 "llmgov ($name)" curl -sf $BASE/health/ready
    local token
    token=$(curl -sf -XPOST $BASE/api/v1/auth/login -H 'content-type: application/json' \
        -d '{"email":"admin@llmgov.local","password":"Bench-password-123"}' | json_field '["access_token"]')
    local templates
    templates=$(curl -sf $BASE/api/v1/policy-templates -H "authorization: Bearer $token" \
        | python3 -c 'import json,sys; print(" ".join(t["id"] for t in json.load(sys.stdin)["items"]))')
    local n=0
    for round in 1 2; do
        for t in $templates; do
            [ $n -ge 20 ] && break
            curl -sf -XPOST $BASE/api/v1/policies/from-template -H "authorization: Bearer $token" \
                -H 'content-type: application/json' \
                -d "{\"template_id\":\"$t\",\"name\":\"$t-$round\",\"status\":\"active\"}" >/dev/null
            n=$((n + 1))
        done
    done
    cat > "$WORK/evaluate.lua" <<LUA
wrk.method = "POST"
wrk.headers["authorization"] = "Bearer $token"
wrk.headers["content-type"] = "application/json"
wrk.body = '{"input":{"model":"gpt-4o","provider":"openai","team":"search","user":"u-17","environment":"production","prompt":"Summarise the quarterly report for the board in five bullet points.","tokens":{"input":120,"output":0}}}'
LUA
    local check
    check=$(curl -sf -XPOST $BASE/api/v1/policies/evaluate -H "authorization: Bearer $token" \
        -H 'content-type: application/json' \
        -d '{"input":{"model":"gpt-4o","provider":"openai","team":"search","user":"u-17","environment":"production","prompt":"Summarise the quarterly report for the board in five bullet points.","tokens":{"input":120,"output":0}}}' \
        | json_field '["results"].__len__()')
    [ "$check" = 20 ] || { echo "expected 20 policies to run, got $check" >&2; exit 1; }
    wrk -t2 -c$CONNS -d2s $BASE/health/live >/dev/null
    wrk -t2 -c$CONNS -d2s -s "$WORK/evaluate.lua" $BASE/api/v1/policies/evaluate >/dev/null
    local trivial eval
    trivial=$(wrk -t2 -c$CONNS -d${DURATION}s --latency $BASE/health/live | parse_wrk)
    eval=$(wrk -t2 -c$CONNS -d${DURATION}s --latency -s "$WORK/evaluate.lua" $BASE/api/v1/policies/evaluate | parse_wrk)
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
    python3 - "$name" $trivial $eval <<'PY'
import sys
name, t_rps, t50, t99, e_rps, e50, e99 = sys.argv[1], *map(float, sys.argv[2:])
print(f"{name:9} trivial GET /health/live                   {t_rps:9.0f} req/s  p50 {t50:6.2f} ms  p99 {t99:6.2f} ms")
print(f"{name:9} POST /api/v1/policies/evaluate (20 active) {e_rps:9.0f} req/s  p50 {e50:6.2f} ms  p99 {e99:6.2f} ms")
print(f"{name:9} ratio evaluate/trivial {e_rps / t_rps:.3f}")
PY
}

PG_DB=llmgov_t_bench_$$
psql "$LLMGOV_TEST_PG_URL" -qc "CREATE DATABASE $PG_DB" >/dev/null
PG_URL="${LLMGOV_TEST_PG_URL%/*}/$PG_DB?sslmode=disable"

echo "llmgov guardrail benchmark: wrk -t2 -c$CONNS, ${DURATION}s per route, $(nproc) cores"
run_backend sqlite "sqlite://$WORK/sqlite.db"
run_backend postgres "$PG_URL"
