#!/usr/bin/env bash
# Load benchmark of the authentication path (issue: foundation).
#
# Measures, in one run per backend, an authenticated `GET /api/v1/users/{id}` with a JWT
# against a trivial unauthenticated route of the same server (`GET /health/live`), with wrk
# at 64 connections, and prints both throughputs, their ratio and p50/p99 latency.
# Target: authenticated >= 50% of the trivial route's throughput; p99 < 10 ms; on SQLite and
# PostgreSQL. wrk (Debian package) is installed when missing.
#
# Usage: scripts/bench-auth.sh [seconds-per-route, default 10]
# Note: server and wrk share this machine's cores, as they would on a small host.
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
PORT=18181
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

# wrk output -> "rps p50_ms p99_ms"
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
    local token user
    token=$(curl -sf -XPOST $BASE/api/v1/auth/login -H 'content-type: application/json' \
        -d '{"email":"admin@llmgov.local","password":"Bench-password-123"}' | json_field '["access_token"]')
    user=$(curl -sf $BASE/api/v1/auth/me -H "authorization: Bearer $token" | json_field '["user"]["id"]')
    # Warm up both routes, then measure.
    wrk -t2 -c$CONNS -d2s $BASE/health/live >/dev/null
    local trivial auth
    trivial=$(wrk -t2 -c$CONNS -d${DURATION}s --latency $BASE/health/live | parse_wrk)
    auth=$(wrk -t2 -c$CONNS -d${DURATION}s --latency -H "authorization: Bearer $token" $BASE/api/v1/users/$user | parse_wrk)
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
    python3 - "$name" $trivial $auth <<'PY'
import sys
name, t_rps, t50, t99, a_rps, a50, a99 = sys.argv[1], *map(float, sys.argv[2:])
ratio = a_rps / t_rps
print(f"{name:9} trivial GET /health/live      {t_rps:9.0f} req/s  p50 {t50:6.2f} ms  p99 {t99:6.2f} ms")
print(f"{name:9} auth GET /api/v1/users/{{id}}  {a_rps:9.0f} req/s  p50 {a50:6.2f} ms  p99 {a99:6.2f} ms")
print(f"{name:9} ratio auth/trivial {ratio:.2f} (target >= 0.50: {'met' if ratio >= 0.5 else 'MISSED'}); "
      f"auth p99 {a99:.2f} ms (target < 10 ms: {'met' if a99 < 10 else 'MISSED'})")
PY
}

PG_DB=llmgov_t_bench_$$
psql "$LLMGOV_TEST_PG_URL" -qc "CREATE DATABASE $PG_DB" >/dev/null
# Loopback: no TLS between llmgov and PostgreSQL (production connections should use TLS).
PG_URL="${LLMGOV_TEST_PG_URL%/*}/$PG_DB?sslmode=disable"

echo "llmgov auth benchmark: wrk -t2 -c$CONNS, ${DURATION}s per route, $(nproc) cores"
run_backend sqlite "sqlite://$WORK/sqlite.db"
run_backend postgres "$PG_URL"
