"""API latency: GET /api/devices and /api/devices/{id}/alerts with a seeded fleet, one gevent worker.

The fleet is written straight into SQLite (as the ingest would have left it: every device online
with a heartbeat, one in ten with one to three active alerts), then the real web process answers
sequential requests from one keep-alive HTTP client.
Run: .venv/bin/python -m bench.api_latency [--devices 10000] [--list 50] [--alerts 500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import Stack, percentile
from shared import store

STATES = ("WARNING", "CRITICAL", "FAILED")
SUBSYSTEMS = ("FileManager", "TimeKeeper", "Audio")


def seed(db: Path | str, devices: int, rng: random.Random) -> list[str]:
    """Write `devices` devices (and some alerts) into the store; returns their ids."""
    conn = store.open_store(db)
    now = time.time()
    ids = [f"bell-{i:06d}" for i in range(devices)]
    with store.write(conn):
        for device_id in ids:
            store.mark_alive(conn, device_id, now - rng.random() * 30)
            store.set_heartbeat(conn, device_id, json.dumps({"fw": "v155", "uptime": rng.randrange(10**6)}))
            if rng.random() < 0.1:
                for subsystem in rng.sample(SUBSYSTEMS, rng.randint(1, 3)):
                    state = rng.choice(STATES)
                    store.upsert_alert(conn, device_id, subsystem, state, f"{subsystem} {state.lower()}", now)
    conn.close()
    return ids


def timed_get(conn: http.client.HTTPConnection, path: str) -> tuple[float, int]:
    """One GET on a keep-alive connection: (seconds to the whole body, body size)."""
    t0 = time.perf_counter()
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - t0
    if response.status != 200:
        raise RuntimeError(f"GET {path}: {response.status} {body[:200]!r}")
    return elapsed, len(body)


class _Clock:
    """Wall and this process's CPU seconds spent in the calls it timed (the HTTP client's: its share of a core)."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    def timed(self, call: Any, *args: Any) -> tuple[float, Any]:
        """Run `call(*args)`; its wall seconds, and its result."""
        c0, t0 = time.process_time(), time.perf_counter()
        out = call(*args)
        elapsed = time.perf_counter() - t0
        self.wall, self.cpu = self.wall + elapsed, self.cpu + time.process_time() - c0
        return elapsed, out


def one_round(
    stack: Stack, target: Path | str, ids: list[str], lists: int, alerts: int, rng: random.Random
) -> dict[str, float]:
    """Sequential requests, each beside its yardstick at the same moment of the machine.

    The whole device list `lists` times, each followed by the same query in-process (one read-only
    connection, no HTTP, no Flask); then `alerts` random devices' alerts, each followed by a GET /healthz
    (no database: the server's floor for a small JSON answer) and five of the same reads in-process.
    """
    http_conn = http.client.HTTPConnection("127.0.0.1", stack.web_port, timeout=30)
    conn = store.connect(target, readonly=True)
    client, alone = _Clock(), _Clock()  # the HTTP client's calls; the in-process twins
    t: dict[str, list[float]] = {k: [] for k in ("devices", "alerts", "healthz", "inproc_devices", "inproc_alerts")}

    def device_list() -> None:
        rows, _ = store.list_devices(conn, store.DeviceQuery())
        store.rows_json(rows)

    def device_alerts(device_id: str) -> None:
        with store.read(conn):
            store.is_known(conn, device_id)
            json.dumps(store.alerts(conn, device_id))

    try:
        timed_get(http_conn, "/api/devices")  # warm: the first request opens the database, imports lazily
        device_list()
        size = 0
        for _ in range(lists):
            elapsed, (_, size) = client.timed(timed_get, http_conn, "/api/devices")
            t["devices"].append(elapsed)
            t["inproc_devices"].append(alone.timed(device_list)[0])
        for _ in range(alerts):
            device_id = rng.choice(ids)
            t["alerts"].append(client.timed(timed_get, http_conn, f"/api/devices/{device_id}/alerts")[0])
            t["healthz"].append(client.timed(timed_get, http_conn, "/healthz")[0])
            t["inproc_alerts"].extend(alone.timed(device_alerts, device_id)[0] for _ in range(5))
    finally:
        conn.close()
        http_conn.close()
    out = {f"{k}_p{q}_ms": percentile(v, q) * 1000 for k, v in t.items() for q in (50, 99)}
    # The ratios compare medians: a round's p99 of 50 lists is its slowest one or two, a hiccup of the VM's.
    out["devices_ratio"] = out["devices_p50_ms"] / out["inproc_devices_p50_ms"]
    out["alerts_ratio"] = out["alerts_p50_ms"] / (out["inproc_alerts_p50_ms"] + out["healthz_p50_ms"])  # + the floor
    return {**out, "devices_kib": size / 1024, "client_cpu": 100 * client.cpu / max(client.wall, 1e-9)}


def measure(
    devices: int, lists: int, alerts: int, rounds: int, tmp: Path, url: str = "", then: Any = None
) -> dict[str, Any]:
    """Seed, start broker and web, run the rounds; medians of each figure and ratio (on PostgreSQL at `url` if given).

    Each round runs the same queries in-process beside the requests (the yardstick) and reads this process's
    CPU share while it was the HTTP client. `then(stack)`, if given, runs on the same stack before it stops.
    """
    rng = random.Random(7)
    stack = Stack(tmp, web={"workers": 1}, **({"database": {"url": url}} if url else {}))
    try:
        ids = seed(url or stack.db, devices, rng)
        stack.web()
        results = [one_round(stack, url or stack.db, ids, lists, alerts, rng) for _ in range(rounds)]
        extra = then(stack) if then else {}
    finally:
        stack.close()
    return {"devices": devices, **{k: statistics.median(r[k] for r in results) for k in results[0]}, **extra}


def main(argv: list[str] | None = None) -> int:
    """Print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--list", type=int, default=50, help="GET /api/devices this many times per round")
    parser.add_argument("--alerts", type=int, default=500, help="GET .../alerts this many times per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vesper-api-") as tmp:
        r = measure(args.devices, args.list, args.alerts, args.rounds, Path(tmp))
    print(f"{r['devices']:,} devices, medians of {args.rounds} rounds, sequential requests on one connection")
    print(
        f"GET /api/devices ({r['devices_kib']:,.0f} KiB): p50 {r['devices_p50_ms']:.1f} ms, "
        f"p99 {r['devices_p99_ms']:.1f} ms"
    )
    print(f"GET /api/devices/{{id}}/alerts: p50 {r['alerts_p50_ms']:.2f} ms, p99 {r['alerts_p99_ms']:.2f} ms")
    print(
        f"yardstick, the same queries in-process: list p50 {r['inproc_devices_p50_ms']:.1f} ms, "
        f"p99 {r['inproc_devices_p99_ms']:.1f} ms; alerts p50 {r['inproc_alerts_p50_ms']:.2f} ms, "
        f"p99 {r['inproc_alerts_p99_ms']:.2f} ms"
    )
    floor = f"p50 {r['healthz_p50_ms']:.2f} ms, p99 {r['healthz_p99_ms']:.2f} ms"
    print(f"yardstick, the server's floor (GET /healthz): {floor}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
