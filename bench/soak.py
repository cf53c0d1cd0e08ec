"""Soak: ingest and web RSS before and after a long run at the heartbeat fleet's load.

A 100,000-device fleet's heartbeats (3,333 msg/s) into the real ingest, plus what keeps the web
busy meanwhile: alert transitions at a few per second to stream clients that stay connected, and
an API client asking for alerts and recent events every second.
Run: .venv/bin/python -m bench.soak [--devices 100000] [--seconds 600]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import cpu_seconds, rss_mib
from bench.heartbeat_fleet import PERIOD_S, seed_fleet
from bench.mqtt_load import HeartbeatFleet, RawPublisher
from bench.sse_load import SseLoad
from bench.stream_fanout import fanout_stack, healthz

ALERTS_PER_S = 5.0
STREAM_CLIENTS = 20
WARMUP_S = PERIOD_S + 10.0  # "before" once every device has been heard (its row written, its pages cached)


def alerts(port: int, stop: threading.Event) -> None:
    """Alert transitions on a few devices, each message unique so each is an event."""
    pub = RawPublisher(port, "bench-soak-alerts")
    n = 0
    while not stop.wait(1 / ALERTS_PER_S):
        pub.read_acks()
        body = {"subsystem": "Soak", "state": "WARNING" if n % 2 else "CRITICAL", "msg": f"soak {n} {time.time():.6f}"}
        pub.send([pub.packet(f"vesper/soak-{n % 20:02d}/status/alerts".encode(), json.dumps(body).encode())])
        n += 1
    pub.drain()
    pub.close()


def api_polls(port: int, stop: threading.Event, devices: list[str]) -> None:
    """What an operator's scripts might ask, once a second."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    i = 0
    while not stop.wait(1.0):
        for path in (f"/api/devices/{devices[i % len(devices)]}/alerts", "/api/events?limit=100"):
            conn.request("GET", path)
            conn.getresponse().read()
        i += 1
    conn.close()


def run(devices: int, seconds: float, warmup: float = WARMUP_S) -> dict[str, Any]:
    """RSS of the ingest and of the web worker after the warm-up and after `seconds` more."""
    with tempfile.TemporaryDirectory(prefix="vesper-soak-") as tmp:
        fleet = HeartbeatFleet(0, devices, PERIOD_S)  # the port is set once the broker runs
        stack, (worker,) = fanout_stack(Path(tmp), STREAM_CLIENTS, seed=lambda db: seed_fleet(db, fleet))
        fleet.port = stack.port
        ingest = stack.procs[0]
        stop = threading.Event()
        helpers = [
            threading.Thread(target=alerts, args=(stack.port, stop)),
            threading.Thread(target=api_polls, args=(stack.web_port, stop, [f"soak-{i:02d}" for i in range(20)])),
        ]
        load = SseLoad("127.0.0.1", stack.web_port, procs=1)
        try:
            load.connect(STREAM_CLIENTS)
            fleet.start()
            for helper in helpers:
                helper.start()
            time.sleep(warmup)
            before = rss_mib(ingest.pid), rss_mib(worker)
            gen0, clients0, t0 = cpu_seconds(os.getpid()), load.cpu(), time.monotonic()
            end, series = time.monotonic() + seconds, [before]
            while time.monotonic() < end:
                time.sleep(min(10.0, max(0.0, end - time.monotonic())))
                load.reset()  # the clients' own tallies must not grow for the whole soak
                series.append((rss_mib(ingest.pid), rss_mib(worker)))
            after = series[-1]
            wall = time.monotonic() - t0
            gens = {"publishers": 100 * (cpu_seconds(os.getpid()) - gen0) / wall}
            gens["clients"] = 100 * (load.cpu() - clients0) / wall
            streams = healthz(stack.web_port)["streams"]
        finally:
            stop.set()
            for helper in helpers:
                if helper.is_alive():
                    helper.join(30)
            fleet.stop()
            load.close()
            stack.close()
    return {
        "seconds": seconds,
        "devices": devices,
        "ingest_before": before[0],
        "ingest_after": after[0],
        "web_before": before[1],
        "web_after": after[1],
        "ingest_series": [i for i, _ in series],
        "web_series": [w for _, w in series],
        "dropped": streams["dropped"],
        "gens": gens,
    }


def main(argv: list[str] | None = None) -> int:
    """Print the RSS before and after."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=600.0)
    args = parser.parse_args(argv)
    r = run(args.devices, args.seconds)
    print(f"{args.devices:,} devices' heartbeats for {args.seconds:g} s (after {WARMUP_S:g} s of warm-up)")
    print(
        f"ingest RSS {r['ingest_before']:.1f} -> {r['ingest_after']:.1f} MiB; "
        f"web worker RSS {r['web_before']:.1f} -> {r['web_after']:.1f} MiB"
    )
    for name in ("ingest", "web"):
        print(f"{name} RSS every 10 s: " + " ".join(f"{v:.1f}" for v in r[f"{name}_series"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
