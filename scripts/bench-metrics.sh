#!/usr/bin/env bash
# Load benchmark of metrics (issue: metrics, alerts and real-time streams), on SQLite and
# PostgreSQL, against a release build:
#
# 1. ingest over HTTP in batches of 1,000 points (100 series), wrk at 16 connections;
# 2. OTLP/HTTP protobuf ingest of 100 GenAI spans per request (600 points), made with the
#    OpenTelemetry Python SDK's encoder;
# 3. a 30-day p95 query over 1,000 series (one point per series per hour for 30 days,
#    720,000 points, loaded first), after rollup compaction, 20 runs;
# 4. end-to-end latency from ingest to a WebSocket client receiving the point (300 probes,
#    scripts/ws_latency_probe.py): on an idle server, under a steady load of STEADY_RATE
#    batches of 1,000 points per second (default 50, i.e. 50,000 points/s, half the ingest
#    target; sent on a fixed schedule, open loop), and while the saturating load of 1. runs;
# 5. server memory during a long ingest at full speed (VmRSS sampled every 10 s).
#
# Usage: scripts/bench-metrics.sh [seconds-per-load, default 10] (SOAK_SECS, default 300,
# sets the length of 5.)
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=http://127.0.0.1:18183
. scripts/bench-common.sh
ensure_otel_python
"$LLMGOV_TEST_PYTHON" -m pip install -q --disable-pip-version-check "websockets>=13,<16"
SOAK_SECS=${SOAK_SECS:-300}
STEADY_RATE=${STEADY_RATE:-50}
CONNS=16
export LLMGOV_METRICS__MAINTENANCE_INTERVAL_SECS=2

api_key() {
    curl -sf -XPOST "$BASE/api/v1/api-keys" -H "authorization: Bearer $1" -H 'content-type: application/json' \
        -d '{"name":"bench","scopes":["metrics:create","metrics:read"]}' | json_field '["key"]'
}

# A batch of 1,000 points over 100 series (10 models x 10 teams), timestamps of now.
python3 - "$WORK/batch.json" <<'PY'
import datetime, json, sys
now = datetime.datetime.now(datetime.timezone.utc)
points = []
for i in range(1000):
    t = now - datetime.timedelta(milliseconds=i)
    points.append({"timestamp": t.isoformat(), "metric_name": "llm.latency_ms", "metric_type": "histogram",
                   "value": 50 + (i * 7919) % 2000, "unit": "ms", "resource_type": "model",
                   "resource_id": f"model-{i % 10}", "tags": {"model": f"model-{i % 10}", "team": f"team-{(i // 10) % 10}"}})
json.dump({"points": points}, open(sys.argv[1], "w"))
PY

# 100 GenAI spans as one OTLP protobuf export request.
"$LLMGOV_TEST_PYTHON" - "$WORK/spans.pb" <<'PY'
import sys, time
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

class Keep(SpanExporter):
    spans = []
    def export(self, spans):
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS

keep = Keep()
tp = TracerProvider(resource=Resource.create({"service.name": "bench", "llmgov.team": "search"}))
tp.add_span_processor(SimpleSpanProcessor(keep))
tracer = tp.get_tracer("bench")
now = time.time_ns()
for i in range(100):
    s = tracer.start_span("chat", start_time=now - 300_000_000)
    s.set_attribute("gen_ai.operation.name", "chat")
    s.set_attribute("gen_ai.provider.name", "openai")
    s.set_attribute("gen_ai.request.model", f"gpt-4o-{i % 5}")
    s.set_attribute("gen_ai.usage.input_tokens", 100 + i)
    s.set_attribute("gen_ai.usage.output_tokens", 40)
    s.end(end_time=now)
open(sys.argv[1], "wb").write(encode_spans(keep.spans).SerializeToString())
PY

# Loads 30 days of hourly points for 1,000 series (20 models x 50 teams).
load_history() {
    python3 - "$BASE" "$1" <<'PY'
import datetime, json, sys, urllib.request
base, key = sys.argv[1], sys.argv[2]
end = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=1)
def post(points):
    req = urllib.request.Request(base + "/api/v1/metrics/ingest", data=json.dumps({"points": points}).encode(),
                                 headers={"authorization": "Bearer " + key, "content-type": "application/json"})
    r = json.load(urllib.request.urlopen(req))
    assert r["rejected"] == 0, r
batch = []
for h in range(30 * 24):
    t = (end - datetime.timedelta(hours=h)).isoformat()
    for s in range(1000):
        batch.append({"timestamp": t, "metric_name": "bench.cost_usd", "metric_type": "histogram",
                      "value": 0.001 * (1 + (h * 1000 + s) * 7919 % 997), "resource_type": "model",
                      "resource_id": f"m{s % 20}", "tags": {"model": f"m{s % 20}", "team": f"t{s // 20}"}})
        if len(batch) == 3000:
            post(batch); batch = []
if batch: post(batch)
PY
}

run_backend() {
    local name=$1 url=$2
    start_server "$name" "$url"
    local token key
    token=$(admin_token)
    key=$(api_key "$token")
    cat > "$WORK/ingest.lua" <<LUA
wrk.method = "POST"
wrk.headers["authorization"] = "Bearer $key"
wrk.headers["content-type"] = "application/json"
local f = io.open("$WORK/batch.json", "rb"); wrk.body = f:read("*all"); f:close()
LUA
    cat > "$WORK/otlp.lua" <<LUA
wrk.method = "POST"
wrk.headers["authorization"] = "Bearer $key"
wrk.headers["content-type"] = "application/x-protobuf"
local f = io.open("$WORK/spans.pb", "rb"); wrk.body = f:read("*all"); f:close()
LUA
    local accepted
    accepted=$(curl -sf -XPOST "$BASE/api/v1/metrics/ingest" -H "authorization: Bearer $key" \
        -H 'content-type: application/json' --data-binary @"$WORK/batch.json" | json_field '["accepted"]')
    [ "$accepted" = 1000 ] || { echo "expected 1000 accepted, got $accepted" >&2; exit 1; }
    curl -sf -XPOST "$BASE/v1/traces" -H "authorization: Bearer $key" -H 'content-type: application/x-protobuf' \
        --data-binary @"$WORK/spans.pb" -o /dev/null
    local ingest otlp probe
    "$LLMGOV_TEST_PYTHON" scripts/ws_latency_probe.py "$BASE" "$token" "$key" 30 >/dev/null
    local idle_probe
    idle_probe=$("$LLMGOV_TEST_PYTHON" scripts/ws_latency_probe.py "$BASE" "$token" "$key" 300)
    local steady_probe
    steady_probe=$("$LLMGOV_TEST_PYTHON" scripts/ws_latency_probe.py "$BASE" "$token" "$key" 300 --load "$WORK/batch.json" "$STEADY_RATE")
    wrk -t2 -c$CONNS -d${DURATION}s --latency -s "$WORK/ingest.lua" "$BASE/api/v1/metrics/ingest" | parse_wrk >"$WORK/wrk.out" &
    local wrk_pid=$!
    probe=$("$LLMGOV_TEST_PYTHON" scripts/ws_latency_probe.py "$BASE" "$token" "$key" 300)
    wait "$wrk_pid"
    ingest=$(cat "$WORK/wrk.out")
    otlp=$(wrk -t2 -c$CONNS -d${DURATION}s --latency -s "$WORK/otlp.lua" "$BASE/v1/traces" | parse_wrk)
    local t0 t1
    t0=$(date +%s.%N)
    load_history "$key"
    t1=$(date +%s.%N)
    # Wait for compaction to merge the rollup rows (one daily row per series and day).
    local q="metric_name=bench.cost_usd&aggregations=p95,p99,count&start=$(date -u -d '30 days ago' +%Y-%m-%dT%H:%M:%SZ)"
    for _ in $(seq 1 300); do
        rows=$(curl -sf "$BASE/api/v1/metrics/aggregates?$q" -H "authorization: Bearer $key" | json_field '["sources"]["daily_rollups"]')
        [ "$rows" -le 31000 ] && break
        sleep 1
    done
    local times=()
    for _ in $(seq 1 20); do
        times+=("$(curl -sf -o "$WORK/q.json" -w '%{time_total}' "$BASE/api/v1/metrics/aggregates?$q" -H "authorization: Bearer $key")")
    done
    local count
    count=$(json_field '["groups"][0]["values"]["count"]' < "$WORK/q.json")
    local series
    series=$(json_field '["sources"]["series"]' < "$WORK/q.json")
    local rss
    rss=$(awk '/VmHWM/ {print $2}' /proc/$SERVER_PID/status)
    # Memory during a long ingest at full speed.
    wrk -t2 -c$CONNS -d${SOAK_SECS}s -s "$WORK/ingest.lua" "$BASE/api/v1/metrics/ingest" >/dev/null &
    local soak_pid=$! samples=()
    while kill -0 "$soak_pid" 2>/dev/null; do
        samples+=("$(awk '/VmRSS/ {print $2}' /proc/$SERVER_PID/status)")
        sleep 10
    done
    stop_server
    python3 - "$name" $ingest $otlp "$t0" "$t1" "$count" "$series" "$rss" "$SOAK_SECS" "$idle_probe" "$steady_probe" "$probe" "${samples[*]}" "${times[@]}" <<'PY'
import statistics, sys
a = sys.argv
name = a[1]
i_rps, i50, i99, o_rps, o50, o99, t0, t1, count, series, rss, soak = map(float, a[2:14])
for label, probe in (("idle server", a[14]), ("steady load", a[15]), ("saturating wrk load", a[16])):
    f = list(map(float, probe.split()))
    w50, w99, wmax, c50, c99, after99 = f[:6]
    if len(f) == 9:
        label = f"steady load of {f[6] * 1000:.0f} points/s, its requests p50 {f[7]:.1f} ms, p99 {f[8]:.1f} ms"
    print(f"{name:9} ingest -> WebSocket client (300 probes, {label}): p50 {w50:.1f} ms, p99 {w99:.1f} ms, max {wmax:.1f} ms;"
          f" the ingest request alone p50 {c50:.1f} ms, p99 {c99:.1f} ms; WebSocket later than the response: p99 {after99:.1f} ms")
samples = [int(x) / 1024 for x in a[17].split()]
times = sorted(float(x) * 1000 for x in a[18:])
if samples:
    first = samples[min(6, len(samples) - 1)]
    print(f"{name:9} RSS during {soak:.0f} s of ingest at full speed: {first:.0f} MB after 1 min, {samples[-1]:.0f} MB at the end, max {max(samples):.0f} MB")
print(f"{name:9} ingest, batches of 1,000 points   {i_rps * 1000:10.0f} points/s ({i_rps:.0f} req/s, p50 {i50:.1f} ms, p99 {i99:.1f} ms)")
print(f"{name:9} OTLP traces, 100 GenAI spans/req  {o_rps * 100:10.0f} spans/s = {o_rps * 600:.0f} points/s (p50 {o50:.1f} ms, p99 {o99:.1f} ms)")
print(f"{name:9} load of 720,000 points (3,000/req) {720000 / (t1 - t0):10.0f} points/s")
print(f"{name:9} 30-day p95 over {series:.0f} series ({count:.0f} points): p50 {statistics.median(times):.1f} ms, max {times[-1]:.1f} ms (20 runs)")
print(f"{name:9} server peak RSS {rss / 1024:.0f} MB")
PY
}

PG_URL=$(bench_pg_url)
echo "llmgov metrics benchmark: wrk -t2 -c$CONNS, ${DURATION}s per load, $(nproc) cores"
run_backend sqlite "sqlite://$WORK/sqlite.db"
run_backend postgres "$PG_URL"
