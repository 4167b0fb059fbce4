"""Sends GenAI telemetry to llmgov with the real OpenTelemetry Python SDK and its OTLP/HTTP
(protobuf) exporters, the way an instrumented LLM app does. Used by the OTLP API test and as
an example (README, "Point an instrumented LLM app at llmgov").

Environment: OTEL_EXPORTER_OTLP_ENDPOINT (e.g. http://127.0.0.1:8080) and
OTEL_EXPORTER_OTLP_HEADERS (Authorization=Bearer%20<API key with metrics:create>).

Sends 20 chat spans with the current attribute names (OpenAI, gpt-4o), 10 with the
deprecated ones (Anthropic, claude-3-5-sonnet; 2 of them failed), one span that is not a
GenAI call, and a delta histogram gen_ai.client.token.usage of 3 input observations of 100.
Exits non-zero if any export failed.
"""

import sys
import time

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.trace import Status, StatusCode

failures = []


class CheckedSpanExporter(OTLPSpanExporter):
    def export(self, spans):
        result = super().export(spans)
        if result != SpanExportResult.SUCCESS:
            failures.append(f"span export: {result}")
        return result


class CheckedMetricExporter(OTLPMetricExporter):
    def export(self, metrics_data, timeout_millis=10_000, **kwargs):
        result = super().export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        if result.name != "SUCCESS":
            failures.append(f"metric export: {result}")
        return result


resource = Resource.create({"service.name": "support-bot", "llmgov.team": "support"})
tracer_provider = TracerProvider(resource=resource)
tracer_provider.add_span_processor(SimpleSpanProcessor(CheckedSpanExporter()))
tracer = tracer_provider.get_tracer("llmgov-test")

now = time.time_ns()
for i in range(20):
    start = now - 60_000_000_000 + i * 1_000_000_000
    span = tracer.start_span("chat gpt-4o", start_time=start)
    span.set_attribute("gen_ai.operation.name", "chat")
    span.set_attribute("gen_ai.provider.name", "openai")
    span.set_attribute("gen_ai.request.model", "gpt-4o")
    span.set_attribute("gen_ai.usage.input_tokens", 100 + i)
    span.set_attribute("gen_ai.usage.output_tokens", 50)
    span.end(end_time=start + (100 + 10 * i) * 1_000_000)

for i in range(10):
    start = now - 30_000_000_000 + i * 1_000_000_000
    span = tracer.start_span("chat claude", start_time=start)
    span.set_attribute("gen_ai.system", "anthropic")
    span.set_attribute("gen_ai.request.model", "claude-3-5-sonnet")
    span.set_attribute("gen_ai.usage.prompt_tokens", 1000)
    span.set_attribute("gen_ai.usage.completion_tokens", 200)
    if i < 2:
        span.set_status(Status(StatusCode.ERROR, "rate limited"))
        span.set_attribute("error.type", "429")
    span.end(end_time=start + 400_000_000)

with tracer.start_as_current_span("GET /health"):
    pass
tracer_provider.shutdown()

reader = PeriodicExportingMetricReader(
    CheckedMetricExporter(preferred_temporality={Histogram: AggregationTemporality.DELTA}),
    export_interval_millis=3_600_000,
)
meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
usage = meter_provider.get_meter("llmgov-test").create_histogram("gen_ai.client.token.usage", unit="{token}")
for _ in range(3):
    usage.record(100, {"gen_ai.token.type": "input", "gen_ai.request.model": "gpt-4o"})
meter_provider.shutdown()

if failures:
    print("\n".join(failures), file=sys.stderr)
    sys.exit(1)
print("sent 31 spans and 1 metric")
