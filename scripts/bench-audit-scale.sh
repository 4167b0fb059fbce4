#!/usr/bin/env bash
# Audit trail at scale (tamper-evident audit issue): fills a database with ENTRIES audit
# entries (default 10,000,000), prints inclusion-proof generation and verification latency at
# that size, then streams the whole log through a running server, as JSON Lines and as the
# binary archive, prints the server's peak memory (VmHWM) before and after, and times the
# offline verification of both downloads with `llmgov audit verify --export`.
# Embedded SQLite by default; `--postgres` uses a scratch database on the local PostgreSQL;
# `--proofs-only` stops after the proof figures.
# Needs ~1.5 KB of disk per entry, plus ~1.3 KB per entry for the two downloads.
# Usage: scripts/bench-audit-scale.sh [ENTRIES] [--postgres] [--proofs-only]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh
ensure_rust
N=10000000
PG=
PROOFS_ONLY=
for a in "$@"; do
    case $a in
    --postgres) PG=1 ;;
    --proofs-only) PROOFS_ONLY=1 ;;
    *) N=$a ;;
    esac
done
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${HOME:-/root}/.cache/llmgov-target}
cargo build --release --locked -p llmgov >&2
BIN=$CARGO_TARGET_DIR/release/llmgov
DIR=$(mktemp -d)
PID=
DB=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null
    [ -n "$DB" ] && psql "$LLMGOV_TEST_PG_URL" -qc "DROP DATABASE IF EXISTS llmgov_scale WITH (FORCE)" >/dev/null 2>&1
    rm -rf "$DIR"
}
trap cleanup EXIT
export LLMGOV_ADMIN_PASSWORD=Scale-password-123
if [ -n "$PG" ]; then
    ensure_postgres
    psql "$LLMGOV_TEST_PG_URL" -qc "DROP DATABASE IF EXISTS llmgov_scale WITH (FORCE)" >/dev/null
    psql "$LLMGOV_TEST_PG_URL" -qc "CREATE DATABASE llmgov_scale" >/dev/null
    DB=${LLMGOV_TEST_PG_URL%/*}/llmgov_scale
    export LLMGOV_DATABASE__URL=$DB
else
    DB=
    export LLMGOV_DATABASE__URL=sqlite://$DIR/llmgov.db
fi
"$BIN" migrate --data-dir "$DIR" >/dev/null
"$BIN" admin create-user --data-dir "$DIR" --email filler@example.com --username filler --password Filler-password-123 >/dev/null
cargo bench --locked -p llmgov-store --bench audit_fill -- "$LLMGOV_DATABASE__URL" "$N"
if [ -n "$PG" ]; then
    echo "database: $(psql "$DB" -Atqc "SELECT pg_size_pretty(pg_database_size('llmgov_scale'))")"
else
    echo "database: $(du -sh "$DIR" | cut -f1)"
fi
[ -z "$PROOFS_ONLY" ] || exit 0
LLMGOV_LOG=warn "$BIN" serve --data-dir "$DIR" --listen 127.0.0.1:18383 >/dev/null 2>&1 &
PID=$!
wait_for 60 llmgov curl -sf http://127.0.0.1:18383/health/ready
TOKEN=$(curl -sf -XPOST http://127.0.0.1:18383/api/v1/auth/login -H 'content-type: application/json' \
    -d '{"email":"admin@llmgov.local","password":"Scale-password-123"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
hwm() { awk '/VmHWM/ {print $2 " " $3}' /proc/$PID/status; }
api() { curl -sf -H "authorization: Bearer $TOKEN" "http://127.0.0.1:18383/api/v1/$1"; }
secs() { python3 -c "import time; print(time.time())"; }
echo "server peak memory before export: $(hwm)"
api audit/checkpoints/public-key > "$DIR/key.json"
for format in jsonl archive; do
    START=$(secs)
    api "audit/export?format=$format" > "$DIR/export.$format"
    api audit/checkpoints/latest > "$DIR/checkpoint.json"
    END=$(secs)
    BYTES=$(stat -c %s "$DIR/export.$format")
    python3 -c "b=$BYTES; s=$END-$START; print(f'export ($format): {b/1e9:.2f} GB in {s:.1f} s = {b/1e6/s:.0f} MB/s')"
    echo "server peak memory after streaming the whole $format export: $(hwm)"
    START=$(secs)
    "$BIN" audit verify --export "$DIR/export.$format" --checkpoint "$DIR/checkpoint.json" --public-key "$DIR/key.json"
    END=$(secs)
    python3 -c "s=$END-$START; print(f'offline verification ($format, every core): {s:.1f} s = {$N/s:,.0f} entries/s')"
    rm -f "$DIR/export.$format"
done
