#!/usr/bin/env bash
# Audit trail at scale (tamper-evident audit issue): fills an embedded database with ENTRIES
# audit entries (default 10,000,000), prints inclusion-proof generation and verification
# latency at that size, then streams the whole export through a running server and prints
# the server's peak memory (VmHWM) before and during the export.
# Needs ~1.5 KB of disk per entry. Usage: scripts/bench-audit-scale.sh [ENTRIES]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/services.sh
ensure_rust
N=${1:-10000000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${HOME:-/root}/.cache/llmgov-target}
cargo build --release --locked -p llmgov >&2
BIN=$CARGO_TARGET_DIR/release/llmgov
DIR=$(mktemp -d)
PID=
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; rm -rf "$DIR"' EXIT
export LLMGOV_ADMIN_PASSWORD=Scale-password-123
"$BIN" migrate --data-dir "$DIR" >/dev/null
"$BIN" admin create-user --data-dir "$DIR" --email filler@example.com --username filler --password Filler-password-123 >/dev/null
cargo bench --locked -p llmgov-store --bench audit_fill -- "sqlite://$DIR/llmgov.db" "$N"
echo "database: $(du -sh "$DIR" | cut -f1)"
LLMGOV_LOG=warn "$BIN" serve --data-dir "$DIR" --listen 127.0.0.1:18383 >/dev/null 2>&1 &
PID=$!
wait_for 60 llmgov curl -sf http://127.0.0.1:18383/health/ready
TOKEN=$(curl -sf -XPOST http://127.0.0.1:18383/api/v1/auth/login -H 'content-type: application/json' \
    -d '{"email":"admin@llmgov.local","password":"Scale-password-123"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
hwm() { awk '/VmHWM/ {print $2 " " $3}' /proc/$PID/status; }
echo "server peak memory before export: $(hwm)"
START=$(date +%s.%N)
BYTES=$(curl -sf -H "authorization: Bearer $TOKEN" 'http://127.0.0.1:18383/api/v1/audit/export?format=jsonl' | wc -c)
END=$(date +%s.%N)
python3 -c "b=$BYTES; s=$END-$START; print(f'export: {b/1e9:.2f} GB in {s:.1f} s = {b/1e6/s:.0f} MB/s')"
echo "server peak memory after streaming the whole export: $(hwm)"
