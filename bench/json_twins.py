"""The hand-built JSON twins (wire_json, iso's cache, devices_json) beside plain json and orjson, on this machine.

Each job runs every implementation once per round, interleaved, and reports the median per item;
outputs are checked to decode to equal objects first. orjson is only a comparison here (not a dependency).
Run: .venv/bin/python -m bench.json_twins [--devices 10000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from shared import events, store
from shared.events import dumps, event_dict, iso, wire_json

SUBSYSTEMS = {
    "FileManager": ("SD mount failed", "ConfigManager health check failed"),
    "TimeKeeper": ("NTP sync failed", "RTC drift above 2 s"),
    "Audio": ("Amplifier over temperature", "Speaker impedance out of range"),
    "Network": ("Wi-Fi RSSI low", "Broker round trip above 2 s"),
    "Motor": ("Clapper stalled", "Motor current high"),
}
STATES = ("WARNING", "CRITICAL", "FAILED")
SEVERITY = {"FAILED": "critical", "CRITICAL": "critical", "WARNING": "warning"}  # as the ingest gives alerts
EVENTS = 10_000
TIMESTAMPS = 100_000
HEARTBEAT_S = 30.0
WITHIN = 0.10  # "within 10 % of the fastest"

Job = list[tuple[str, Callable[[], object]]]


def plain_iso(ts: float) -> str:
    """The datetime expression iso() must equal."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def strftime_iso(ts: float) -> str:
    """iso()'s arithmetic with time.strftime on every call, no cache."""
    whole = math.floor(ts)
    micros = round((ts - whole) * 1e6)
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(whole))}.{micros // 1000:03d}Z"


def measure(job: Job, rounds: int) -> dict[str, float]:
    """Median seconds per call of each implementation, interleaved over `rounds` rounds."""
    samples: dict[str, list[float]] = {label: [] for label, _ in job}
    for _ in range(rounds):
        for label, fn in job:
            gc.collect()
            start = time.perf_counter()
            fn()
            samples[label].append(time.perf_counter() - start)
    return {label: statistics.median(values) for label, values in samples.items()}


def alert_events(rng: random.Random, now: float) -> list[tuple[int, float, str, str, str, dict[str, Any]]]:
    """EVENTS alert events as the ingest emits them: (id, ts, type, severity, source_id, payload)."""
    rows = []
    for event_id in range(1, EVENTS + 1):
        subsystem = rng.choice(list(SUBSYSTEMS))
        state = rng.choice(STATES)
        payload = {
            "subsystem": subsystem,
            "state": state,
            "message": rng.choice(SUBSYSTEMS[subsystem]),
            "previous_state": rng.choice((None, None, *STATES)),
        }
        severity = SEVERITY[state]
        rows.append((event_id, now + event_id * 0.01, "alert", severity, f"bell-{rng.randrange(10_000):05d}", payload))
    return rows


def event_job(rng: random.Random) -> tuple[Job, int]:
    """(a) wire_json on the payload already encoded for the DB, (b) dumps(event_dict), (c) orjson."""
    rows = alert_events(rng, time.time())
    encoded = [(i, ts, t, sev, src, dumps(p)) for i, ts, t, sev, src, p in rows]
    a = [wire_json(*r) for r in encoded]
    b = [dumps(event_dict(*r)) for r in rows]
    c = [orjson.dumps(event_dict(*r)) for r in rows]
    assert [json.loads(x) for x in a] == [json.loads(x) for x in b] == [orjson.loads(x) for x in c]
    job: Job = [
        ("(a) wire_json(pre-encoded payload)", lambda: [wire_json(*r) for r in encoded]),
        ("(b) dumps(event_dict(...))", lambda: [dumps(event_dict(*r)) for r in rows]),
        ("(c) orjson.dumps(event_dict(...))", lambda: [orjson.dumps(event_dict(*r)) for r in rows]),
    ]
    return job, len(rows)


def device_list_times(rng: random.Random, count: int) -> list[float]:
    """Timestamps as a device list holds them: first_seen from a start-up burst, last_seen over a heartbeat."""
    start = 1_767_225_600.0 + rng.random()
    first_seen = [start + rng.uniform(0, 3) for _ in range(count // 2)]
    last_seen = [start + 3600 + rng.uniform(0, HEARTBEAT_S) for _ in range(count - count // 2)]
    mixed = first_seen + last_seen
    rng.shuffle(mixed)
    return mixed


def timestamp_job(rng: random.Random) -> tuple[Job, int]:
    """iso() with its per-second cache (emptied each round) vs datetime vs strftime without a cache."""
    stamps = device_list_times(rng, TIMESTAMPS)
    assert [iso(t) for t in stamps] == [plain_iso(t) for t in stamps] == [strftime_iso(t) for t in stamps]

    def cached() -> list[str | None]:
        events._SECOND_TEXT.clear()  # each round pays for filling it
        return [iso(t) for t in stamps]

    job: Job = [
        ("iso() per-second cache", cached),
        ("datetime.fromtimestamp().isoformat()", lambda: [plain_iso(t) for t in stamps]),
        ("time.strftime + ms, no cache", lambda: [strftime_iso(t) for t in stamps]),
    ]
    return job, len(stamps)


def heartbeat_json(rng: random.Random, uptime: int) -> str:
    """A ~150-byte heartbeat, compact as the ingest stores it."""
    body = {
        "uptime_s": uptime,
        "fw": "v155",
        "rssi": rng.randint(-80, -40),
        "temp_c": round(rng.uniform(20, 60), 1),
        "free_heap": rng.randrange(60_000, 200_000),
        "ip": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
        "sd_free_mb": rng.randrange(100, 30_000),
        "ntp": "synced",
        "reboot_reason": "power_on",
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def seed(db: Path, count: int, rng: random.Random) -> tuple[Any, float]:
    """A store with `count` online devices, each with a heartbeat, one in ten alerting; returns (conn, bytes)."""
    conn = store.open_store(db)
    start = time.time() - 3600
    sizes = []
    with store.write(conn):
        for i in range(count):
            device_id = f"bell-{i:05d}"
            store.mark_alive(conn, device_id, start + rng.uniform(0, 3))
            last = start + 3600 - rng.uniform(0, HEARTBEAT_S)
            store.mark_alive(conn, device_id, last)
            heartbeat = heartbeat_json(rng, int(last - start))
            sizes.append(len(heartbeat))
            store.set_heartbeat(conn, device_id, heartbeat)
            if rng.random() < 0.05:
                store.set_playback(conn, device_id, True, f"melody-{rng.randrange(100)}")
            if rng.random() < 0.10:
                for subsystem in rng.sample(list(SUBSYSTEMS), rng.choice((1, 1, 1, 2, 3))):
                    state = rng.choice(STATES)
                    store.upsert_alert(conn, device_id, subsystem, state, rng.choice(SUBSYSTEMS[subsystem]), last)
    return conn, statistics.mean(sizes)


def device_job(conn: Any, count: int) -> tuple[Job, int]:
    """devices_json vs json.dumps(devices()) vs orjson.dumps(devices()), each a whole list."""
    twin = json.loads(store.devices_json(conn))
    plain = json.loads(json.dumps(store.devices(conn), separators=(",", ":")))
    fast = orjson.loads(orjson.dumps(store.devices(conn)))
    assert len(twin) == count and twin == plain == fast, "device list outputs differ"
    job: Job = [
        ("store.devices_json(conn)", lambda: store.devices_json(conn)),
        ("json.dumps(store.devices(conn))", lambda: json.dumps(store.devices(conn), separators=(",", ":"))),
        ("orjson.dumps(store.devices(conn))", lambda: orjson.dumps(store.devices(conn))),
    ]
    return job, 1


def report(
    title: str, unit: str, scale: float, medians: dict[str, float], per: int, plain: str, plain_name: str = "json"
) -> None:
    """Print one job's rows, its fastest implementation, and whether the plain one is within 10 % of it."""
    values = {label: seconds / per * scale for label, seconds in medians.items()}
    fastest = min(values, key=values.__getitem__)
    print(f"\n{title}")
    for label, value in values.items():
        ratio = value / values[fastest]
        mark = "  <- fastest" if label == fastest else ""
        print(f"  {label:<40} {value:>10.3f} {unit:<8} x{ratio:4.2f}{mark}")
    gap = values[plain] / values[fastest] - 1
    verdict = "yes" if gap <= WITHIN else "no"
    print(f"  fastest: {fastest}; plain {plain_name} ({plain}) within 10 % of it: {verdict} ({gap:+.0%})")


def main(argv: list[str] | None = None) -> int:
    """Run the three jobs and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000, help="devices in the SQLite store (default 10000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per implementation; the median is shown")
    args = parser.parse_args(argv)
    rng = random.Random(1)
    print(
        f"json twins: Python {sys.version.split()[0]}, orjson {orjson.__version__}, "
        f"median of {args.rounds} rounds, implementations interleaved"
    )

    job, per = event_job(rng)
    report(f"1. event encoding, {per:,} alert events", "µs/event", 1e6, measure(job, args.rounds), per, job[1][0])

    job, per = timestamp_job(rng)
    medians = measure(job, args.rounds)
    report(f"2. timestamps, {per:,} iso() calls", "ns/call", 1e9, medians, per, job[1][0], "datetime")

    with tempfile.TemporaryDirectory(prefix="vesper-json-twins-") as tmp:
        conn, heartbeat_bytes = seed(Path(tmp) / "vesper.db", args.devices, rng)
        try:
            job, per = device_job(conn, args.devices)
            title = f"3. device list, {args.devices:,} devices, ~10 % alerting, {heartbeat_bytes:.0f}-byte heartbeats"
            report(title, "ms/call", 1e3, measure(job, args.rounds), per, job[1][0])
        finally:
            conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
