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
BASE=http://127.0.0.1:18182
. scripts/bench-common.sh

run_backend() {
    local name=$1 url=$2
    start_server "$name" "$url"
    local token
    token=$(admin_token)
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
    stop_server
    python3 - "$name" $trivial $eval <<'PY'
import sys
name, t_rps, t50, t99, e_rps, e50, e99 = sys.argv[1], *map(float, sys.argv[2:])
print(f"{name:9} trivial GET /health/live                   {t_rps:9.0f} req/s  p50 {t50:6.2f} ms  p99 {t99:6.2f} ms")
print(f"{name:9} POST /api/v1/policies/evaluate (20 active) {e_rps:9.0f} req/s  p50 {e50:6.2f} ms  p99 {e99:6.2f} ms")
print(f"{name:9} ratio evaluate/trivial {e_rps / t_rps:.3f}")
PY
}

PG_URL=$(bench_pg_url)

echo "llmgov guardrail benchmark: wrk -t2 -c$CONNS, ${DURATION}s per route, $(nproc) cores"
run_backend sqlite "sqlite://$WORK/sqlite.db"
run_backend postgres "$PG_URL"
