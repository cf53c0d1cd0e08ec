"""Latency: a device's alert publish -> the event in a stream client's hands, at a steady rate.

The real ingest and one gevent web worker; a few stream clients (bench/sse_load.py) read every
event; the device side (its own process) publishes alert transitions with its send time in the
message. Also splits off the ingest's part: publish -> the event's ts (its batch's commit time).
Run: .venv/bin/python -m bench.latency [--rate 1000] [--seconds 10] [--clients 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bare_subscriber import BareSubscriber
from bench.common import Stack, percentile
from bench.sse_load import SseLoad
from bench.stream_fanout import fanout_stack, hang_up, one_rate

ALERTS = "vesper/+/status/alerts"
PUBLISHED = "vesper/console/published"
MARK = re.compile(r'"message":"bench (\d+) (\d+\.\d+)"')


def ingest_part(db: Path, last: int) -> list[float]:
    """Publish -> stored event ts, seconds, for the newest `last` events."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = conn.execute("SELECT ts, payload FROM events ORDER BY id DESC LIMIT ?", (last,)).fetchall()
    conn.close()
    return [ts - float(m[2]) for ts, payload in rows if (m := MARK.search(payload))]


def measure(stack: Stack, workers: list[int], clients: int, rate: float, seconds: float, rounds: int) -> dict[str, Any]:
    """`rounds` rounds on a running stack; medians of p50 and p99, the ingest's part, the yardsticks and the ratios.

    A bare paho subscriber (its own process) takes the device's messages and the republished events meanwhile:
    publish -> bare receipt is the broker's own share, and of the republished topic the ingest's and broker's.
    Each ratio is the median of the rounds' own: a round's tails move together, the rounds' do not.
    """
    load = SseLoad("127.0.0.1", stack.web_port, procs=1)
    bare = BareSubscriber(stack.port, [ALERTS, PUBLISHED])
    results = []
    try:
        load.connect(clients)
        for _ in range(rounds):
            bare.reset()
            cpu0, t0 = bare.cpu(), time.monotonic()
            r = one_rate(stack, load, workers, clients, rate, seconds)
            r["bare_cpu"] = 100 * (bare.cpu() - cpu0) / (time.monotonic() - t0)
            stored = ingest_part(stack.db, r["events"])
            r["ingest_p50_ms"] = percentile(stored, 50) * 1000
            r["ingest_p99_ms"] = percentile(stored, 99) * 1000
            device, published = bare.latencies()
            for name, lat in (("bare", device), ("republished", published)):
                r[f"{name}_p50_ms"] = percentile(lat, 50) * 1000
                r[f"{name}_p99_ms"] = percentile(lat, 99) * 1000
            r["web_ratio"] = r["p99_ms"] / max(1e-3, r["republished_p99_ms"])  # what the bridge and stream add
            results.append(r)
    finally:
        bare.close()
        load.close()
    hang_up(stack)
    keys = [k for k in results[0] if k.endswith(("_ms", "_cpu", "_cpu_max", "_ratio"))]
    out = {k: statistics.median(r[k] for r in results) for k in keys}
    return {**out, "rate": rate, "clients": clients, "complete": all(r["complete"] for r in results)}


def main(argv: list[str] | None = None) -> int:
    """Print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="alert transitions per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vesper-latency-") as tmp:
        stack, workers = fanout_stack(Path(tmp), args.clients)
        try:
            r = measure(stack, workers, args.clients, args.rate, args.seconds, args.rounds)
        finally:
            stack.close()
    print(f"{args.rate:g} alert transitions/s to {args.clients} stream clients, medians of {args.rounds} rounds")
    print(
        f"publish -> stream client: p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms; every event to every client: "
        f"{r['complete']}"
    )
    print(f"  of which publish -> stored (ingest): p50 {r['ingest_p50_ms']:.1f} ms, p99 {r['ingest_p99_ms']:.1f} ms")
    print(f"yardstick, publish -> bare paho subscriber: p50 {r['bare_p50_ms']:.1f} ms, p99 {r['bare_p99_ms']:.1f} ms")
    print(f"  of the republished event: p50 {r['republished_p50_ms']:.1f} ms, p99 {r['republished_p99_ms']:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
