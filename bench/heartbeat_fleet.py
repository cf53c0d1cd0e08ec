"""Heartbeat fleet: one ingest holding N devices' heartbeats (every 30 s, QoS 1, retained).

Prints the ingest's CPU share of one core and the last_seen lag (device publish -> the ingest's
processing time stored as last_seen), p50/p99, for each fleet size; `--soak S` also prints the
ingest's RSS before and after S seconds at the first size.
Run: .venv/bin/python -m bench.heartbeat_fleet [--devices 100000 200000] [--seconds 20] [--soak 600]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.common import Stack, cpu_seconds, percentile, rss_mib

PERIOD_S = 30.0
TICK_S = 0.01


def publisher(port: int, devices: int, stop: threading.Event, sent: list[int], offset: int = 0) -> None:
    """Publish each device's heartbeat once per PERIOD_S, spread evenly, with its send time in it."""
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"bench-hb-{offset}")
    client.max_inflight_messages_set(200)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    rate = devices / PERIOD_S
    t0 = time.monotonic()
    n = 0
    while not stop.is_set():
        due = int((time.monotonic() - t0) * rate)
        while n < due:
            body = json.dumps({"t": time.time(), "fw": "v155"})
            client.publish(f"vesper/hb-{(n % devices) + offset:06d}/status/heartbeat", body, qos=1, retain=True)
            n += 1
        time.sleep(TICK_S)
    sent.append(n)
    client.disconnect()
    client.loop_stop()


def lag_sample(db: Path, since: float) -> list[float]:
    """last_seen minus the device's send time, for heartbeats sent after `since`."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = conn.execute(
        "SELECT last_seen, json_extract(last_heartbeat, '$.t') FROM devices WHERE last_seen > ?", (since,)
    ).fetchall()
    conn.close()
    return [ls - t for ls, t in rows if t is not None and t > since]


def run(devices: int, seconds: float, soak: float) -> dict[str, float]:
    """One fleet size: warm up one period's worth, then measure."""
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(Path(tmp), liveness={"heartbeat_timeout_s": 90.0})
        try:
            ingest = stack.ingest()
            stop = threading.Event()
            sent: list[int] = []
            publishers = [threading.Thread(target=publisher, args=(stack.port, devices, stop, sent))]
            for p in publishers:
                p.start()
            time.sleep(min(10.0, seconds))  # warm-up: devices appear, caches fill
            rss_before = rss_mib(ingest.pid)
            start_wall, cpu0, t0 = time.time(), cpu_seconds(ingest.pid), time.monotonic()
            time.sleep(seconds)
            cpu = (cpu_seconds(ingest.pid) - cpu0) / (time.monotonic() - t0)
            lags = lag_sample(stack.db, start_wall)
            rss_soak = rss_before
            if soak:
                time.sleep(soak)
                rss_soak = rss_mib(ingest.pid)
            stop.set()
            for p in publishers:
                p.join()
            offline = "device_offline" in stack.log("ingest")
            return {
                "devices": devices,
                "rate": devices / PERIOD_S,
                "cpu": cpu * 100,
                "p50": percentile(lags, 50) * 1000,
                "p99": percentile(lags, 99) * 1000,
                "samples": len(lags),
                "rss_before": rss_before,
                "rss_after": rss_soak,
                "offline": float(offline),
            }
        finally:
            stack.close()


def main(argv: list[str] | None = None) -> int:
    """Run each fleet size and print one table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, nargs="+", default=[100_000])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--soak", type=float, default=0.0)
    args = parser.parse_args(argv)
    header = ("devices", "msg/s", "ingest CPU", "lag p50", "lag p99", "samples", "RSS MiB")
    print("{:>9} {:>7} {:>11} {:>9} {:>9} {:>8} {:>14}".format(*header))
    for n in args.devices:
        r = run(n, args.seconds, args.soak if n == args.devices[0] else 0.0)
        rss = f"{r['rss_before']:.0f}" + (f" -> {r['rss_after']:.0f}" if args.soak and n == args.devices[0] else "")
        print(
            f"{n:>9,} {r['rate']:>7,.0f} {r['cpu']:>10.0f}% {r['p50']:>7.0f}ms {r['p99']:>7.0f}ms "
            f"{r['samples']:>8,} {rss:>14}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
