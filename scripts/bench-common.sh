# Sourced by the load benchmarks (bench-auth.sh, bench-policy.sh): services, a release build
# of llmgov, wrk, and the helpers that read its output. Sets BIN, WORK, CONNS, DURATION.
. scripts/services.sh
ensure_rust
command -v wrk >/dev/null || apt_install wrk
ensure_postgres

DURATION=${1:-10}
CONNS=64
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${HOME:-/root}/.cache/llmgov-target}
cargo build --release --locked -p llmgov >&2
BIN=$CARGO_TARGET_DIR/release/llmgov
WORK=$(mktemp -d)
SERVER_PID=

cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    rm -rf "$WORK"
    drop_test_databases
}
trap cleanup EXIT

json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

# wrk output -> "rps p50_ms p99_ms"; fails on any non-2xx response.
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

# Starts llmgov on the database URL $2 (data dir $WORK/$1) at $BASE and waits for it.
start_server() {
    LLMGOV_LOG=warn LLMGOV_ADMIN_PASSWORD=Bench-password-123 LLMGOV_DATABASE__URL=$2 \
        "$BIN" serve --data-dir "$WORK/$1" --listen "${BASE#http://}" >/dev/null 2>${SERVER_ERR:-/dev/null} &
    SERVER_PID=$!
    wait_for 30 "llmgov ($1)" curl -sf "$BASE/health/ready"
}

stop_server() {
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
}

admin_token() {
    curl -sf -XPOST "$BASE/api/v1/auth/login" -H 'content-type: application/json' \
        -d '{"email":"admin@llmgov.local","password":"Bench-password-123"}' | json_field '["access_token"]'
}

# A fresh PostgreSQL database for one run; prints its URL.
bench_pg_url() {
    local db=llmgov_t_bench_$$
    psql "$LLMGOV_TEST_PG_URL" -qc "CREATE DATABASE $db" >/dev/null
    # Loopback: no TLS between llmgov and PostgreSQL (production connections should use TLS).
    echo "${LLMGOV_TEST_PG_URL%/*}/$db?sslmode=disable"
}
