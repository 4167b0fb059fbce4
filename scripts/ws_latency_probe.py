"""End-to-end latency from ingest to a WebSocket client (scripts/bench-metrics.sh).

Subscribes to `bench.probe` points on /ws/v1/metrics/stream, then N times: POST one point to
/api/v1/metrics/ingest and wait until the WebSocket delivers it. Prints, in ms, "p50 p99 max"
of the time from the start of the ingest request to the WebSocket message, then "p50 p99" of
the ingest request alone (its commit), then the p99 of how much later than the ingest
response the WebSocket message came (0 when it came first).

With `--load BATCH_FILE RATE`, a background load runs meanwhile: the JSON batch in
BATCH_FILE posted RATE times per second on a fixed schedule (open loop: each request starts
on time whether or not earlier ones have finished, as independent clients would send them,
so requests neither wait for nor synchronise with each other). The line then ends with the
load's achieved requests per second and its p50 and p99 in ms; the run fails if any load
request fails or if the load falls behind its schedule by more than a second (the server
could not keep up: not a steady load). The load runs in a process of its own, so that its
threads never hold the interpreter lock while the probe waits for its WebSocket message
(in one process, the probe's latency included the load's Python work).
Usage: ws_latency_probe.py BASE TOKEN INGEST_KEY N [--load BATCH_FILE RATE]
"""
import asyncio
import concurrent.futures
import datetime
import json
import multiprocessing
import statistics
import sys
import time
import urllib.request

import websockets


def p99(xs):
    return sorted(xs)[max(0, int(len(xs) * 0.99) - 1)]


class Load:
    """Posts `body` `rate` times per second on a fixed schedule, in a child process, until
    stopped."""

    def __init__(self, url, key, body, rate):
        self.url, self.key, self.body, self.rate = url, key, body, rate
        ctx = multiprocessing.get_context("fork")
        self.stop = ctx.Event()
        self.results, child = ctx.Pipe(duplex=False)
        self.process = ctx.Process(target=self.main, args=(child,), daemon=True)

    def start(self):
        self.process.start()

    def main(self, out):
        latencies, errors = [], []
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=64)

        def post():
            req = urllib.request.Request(self.url, data=self.body,
                                         headers={"authorization": "Bearer " + self.key,
                                                  "content-type": "application/json"})
            t0 = time.perf_counter()
            try:
                urllib.request.urlopen(req, timeout=30).read()
                latencies.append((time.perf_counter() - t0) * 1000)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))

        started = time.perf_counter()
        behind, i = 0.0, 0
        while not self.stop.is_set():
            due = started + i / self.rate
            now = time.perf_counter()
            if due > now:
                time.sleep(due - now)
            else:
                behind = max(behind, now - due)
            pool.submit(post)
            i += 1
        elapsed = time.perf_counter() - started
        pool.shutdown(wait=True)
        out.send((i / elapsed, latencies, errors, behind))

    def finish(self):
        self.stop.set()
        rps, latencies, errors, behind = self.results.recv()
        self.process.join()
        if errors:
            sys.exit(f"{len(errors)} load requests failed, e.g. {errors[0]}")
        if behind > 1.0:
            sys.exit(f"the load fell {behind:.1f} s behind its schedule: not a steady load")
        return rps, statistics.median(latencies), p99(latencies)


async def main():
    base, token, key, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    load = None
    if len(sys.argv) == 8 and sys.argv[5] == "--load":
        body = open(sys.argv[6], "rb").read()
        load = Load(base + "/api/v1/metrics/ingest", key, body, float(sys.argv[7]))
    elif len(sys.argv) != 5:
        sys.exit(__doc__)
    url = base.replace("http", "ws", 1) + "/ws/v1/metrics/stream?access_token=" + token
    loop = asyncio.get_running_loop()
    async with websockets.connect(url, max_size=None) as ws:
        await ws.recv()  # welcome
        await ws.send(json.dumps({"type": "subscribe", "id": "probe",
                                  "filters": {"metric_name": ["bench.probe"]}}))
        while json.loads(await ws.recv())["type"] != "subscribed":
            pass
        if load:
            load.start()
            await asyncio.sleep(2)  # let the load reach its steady state
        lat, commit, after = [], [], []
        for i in range(n):
            point = {"timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                     "metric_name": "bench.probe", "metric_type": "gauge", "value": i}
            req = urllib.request.Request(base + "/api/v1/metrics/ingest",
                                         data=json.dumps({"points": [point]}).encode(),
                                         headers={"authorization": "Bearer " + key,
                                                  "content-type": "application/json"})
            t0 = time.perf_counter()

            def post():
                urllib.request.urlopen(req).read()
                return time.perf_counter()

            t_resp = await loop.run_in_executor(None, post)
            while True:
                m = json.loads(await ws.recv())
                if m.get("type") == "event" and any(
                        p["value"] == i for s in m["data"]["series"] for p in s["points"]
                ):
                    break
            t_ws = time.perf_counter()
            lat.append((t_ws - t0) * 1000)
            commit.append((t_resp - t0) * 1000)
            after.append(max(0.0, t_ws - t_resp) * 1000)
            if load:
                # Probes spread over the load instead of following each other at once.
                await asyncio.sleep(0.02)
        line = (f"{statistics.median(lat):.2f} {p99(lat):.2f} {max(lat):.2f} "
                f"{statistics.median(commit):.2f} {p99(commit):.2f} {p99(after):.2f}")
        if load:
            rps, l50, l99 = load.finish()
            line += f" {rps:.1f} {l50:.2f} {l99:.2f}"
        print(line)


asyncio.run(main())
