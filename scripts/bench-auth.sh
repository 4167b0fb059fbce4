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
BASE=http://127.0.0.1:18181
. scripts/bench-common.sh

run_backend() {
    local name=$1 url=$2
    start_server "$name" "$url"
    local token user
    token=$(admin_token)
    user=$(curl -sf $BASE/api/v1/auth/me -H "authorization: Bearer $token" | json_field '["user"]["id"]')
    # Warm up both routes, then measure.
    wrk -t2 -c$CONNS -d2s $BASE/health/live >/dev/null
    local trivial auth
    trivial=$(wrk -t2 -c$CONNS -d${DURATION}s --latency $BASE/health/live | parse_wrk)
    auth=$(wrk -t2 -c$CONNS -d${DURATION}s --latency -H "authorization: Bearer $token" $BASE/api/v1/users/$user | parse_wrk)
    stop_server
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

PG_URL=$(bench_pg_url)

echo "llmgov auth benchmark: wrk -t2 -c$CONNS, ${DURATION}s per route, $(nproc) cores"
run_backend sqlite "sqlite://$WORK/sqlite.db"
run_backend postgres "$PG_URL"
