"""End-to-end latency from ingest to a WebSocket client (scripts/bench-metrics.sh).

Subscribes to `bench.probe` points on /ws/v1/metrics/stream, then N times: POST one point to
/api/v1/metrics/ingest and wait until the WebSocket delivers it. Prints, in ms, "p50 p99 max"
of the time from the start of the ingest request to the WebSocket message, then "p50 p99" of
the ingest request alone (its commit), then the p99 of how much later than the ingest
response the WebSocket message came (0 when it came first).
Usage: ws_latency_probe.py BASE TOKEN INGEST_KEY N
"""
import asyncio
import datetime
import json
import statistics
import sys
import time
import urllib.request

import websockets


async def main():
    base, token, key, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    url = base.replace("http", "ws", 1) + "/ws/v1/metrics/stream?access_token=" + token
    loop = asyncio.get_running_loop()
    async with websockets.connect(url, max_size=None) as ws:
        await ws.recv()  # welcome
        await ws.send(json.dumps({"type": "subscribe", "id": "probe",
                                  "filters": {"metric_name": ["bench.probe"]}}))
        while json.loads(await ws.recv())["type"] != "subscribed":
            pass
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
        p99 = lambda xs: sorted(xs)[max(0, int(len(xs) * 0.99) - 1)]
        print(f"{statistics.median(lat):.2f} {p99(lat):.2f} {max(lat):.2f} "
              f"{statistics.median(commit):.2f} {p99(commit):.2f} {p99(after):.2f}")


asyncio.run(main())
