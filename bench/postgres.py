"""Issue 13's figures for PostgreSQL beside SQLite, in one run on one machine, against the real processes.

1. Ingest rate: the real ingest drains a backlog of QoS 1 alert transitions (bench.ingest_throughput), each engine.
2. Takeover: a leader and a standby ingest on one PostgreSQL, a steady QoS 1 stream; the leader SIGKILLed 5 times (a
   new standby after each): kill -> standby's `connected to`, -> its first commit; then no loss of what was published.
3. API latency: bench.api_latency's GETs through real gunicorn at 10,000 devices, each engine.
PostgreSQL is harness/pg.py's throwaway server (the tests' too), run here with fsync and synchronous_commit on.
Run: .venv/bin/python -m bench.postgres [--quick]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from subprocess import Popen
from typing import NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench import api_latency, ingest_throughput
from bench.common import Stack
from harness.pg import Postgres, PostgresError, find_bindir
from shared import store
from vesper_sim.sequences import Transition, implied_events, implied_state, transitions

DURABLE = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}
DURABLE_SHOWN = ("fsync", "synchronous_commit")
INGEST = [sys.executable, "-m", "vesper_ingest"]
log = functools.partial(print, "bench.postgres", file=sys.stderr, flush=True)  # progress
Row = tuple[str, str, str, str, bool | None]  # figure, SQLite, PostgreSQL, target, met


class Sizes(NamedTuple):
    """How big each part runs: 1 backlog and rounds; 2 kills, stream rate, steady seconds before each kill; 3 API."""

    messages: int
    rate_rounds: int
    kills: int
    stream_rate: float
    settle_s: float
    api_devices: int
    api_lists: int
    api_alerts: int
    api_rounds: int


FULL = Sizes(20_000, 3, 5, 2000.0, 2.0, 10_000, 50, 500, 3)
QUICK = Sizes(3_000, 1, 5, 2000.0, 1.0, 2_000, 10, 100, 1)


@contextmanager
def pg_server(base: Path) -> Iterator[Postgres]:
    """harness/pg.py's server, durable, on a free port; its PostgresError becomes a RuntimeError naming PostgreSQL."""
    server = Postgres(find_bindir(), base, settings=DURABLE)
    try:
        server.init()
        server.start()
        yield server
    except PostgresError as exc:
        raise RuntimeError(f"PostgreSQL: {exc}") from None
    finally:
        server.stop()


def engine_notes(server: Postgres, tmp: Path) -> list[str]:
    """What each engine promises on commit, read back from the engines themselves."""
    pg, lite = store.connect(server.url(server.create_database()), readonly=True), store.connect(tmp / "probe.db")
    version, fsync, sync = (pg.execute(f"SHOW {n}").fetchone()[0] for n in ("server_version", *DURABLE_SHOWN))
    mode, level = (lite.execute(f"PRAGMA {n}").fetchone()[0] for n in ("journal_mode", "synchronous"))
    pg.close(), lite.close()
    return [
        f"PostgreSQL {version}: fsync={fsync}, synchronous_commit={sync} (each commit flushed to disk), loopback TCP",
        f"SQLite: journal_mode={mode}, synchronous={('OFF', 'NORMAL', 'FULL', 'EXTRA')[level]} (durable to a process "
        "crash; a power loss may lose the last commits)",
    ]


def ingest_rates(server: Postgres, s: Sizes, tmp: Path) -> list[Row]:
    """1: medians of the drain rate on each engine, rounds interleaved."""
    runs: dict[str, list[dict[str, float]]] = {"sqlite": [], "pg": []}
    for r in range(s.rate_rounds):
        for engine, results in runs.items():
            url = server.url(server.create_database()) if engine == "pg" else ""
            with tempfile.TemporaryDirectory(prefix=f"rate-{engine}-", dir=tmp) as d:
                results.append(ingest_throughput.one_round(s.messages, 1000, seed=r, tmp=Path(d), url=url))
            log(f"1: round {r + 1} {engine}: {results[-1]['ingest']:,.0f} msg/s, lost {bool(results[-1]['lost'])}")
    rate = {e: statistics.median(x["ingest"] for x in v) for e, v in runs.items()}
    bare = {e: statistics.median(x["bare"] for x in v) for e, v in runs.items()}
    ratio = rate["pg"] / rate["sqlite"]
    lost = [e for e, v in runs.items() if any(x["lost"] for x in v)]
    return [
        (f"1 ingest drain, {s.messages:,} QoS 1 transitions (median of {s.rate_rounds})",
         f"{rate['sqlite']:,.0f} msg/s", f"{rate['pg']:,.0f} msg/s", "", None),
        ("  ratio PostgreSQL / SQLite", "", f"{ratio:.2f}", ">= 0.7", ratio >= 0.7),
        ("  bare paho subscriber, same backlog (for reference)", f"{bare['sqlite']:,.0f} msg/s",
         f"{bare['pg']:,.0f} msg/s", "", None),
        ("  final state as published", "lost" if "sqlite" in lost else "yes", "lost" if "pg" in lost else "yes",
         "yes", not lost),
    ]  # fmt: skip


def stream(port: int, seq: list[Transition], rate: float, stopping: threading.Event, sent: list[int]) -> None:
    """Publish `seq` at QoS 1, `rate` a second, until stopped; then wait until the broker has every one of sent[0]."""
    pub = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-stream")
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    infos, t0 = [], time.monotonic()
    while not stopping.wait(0.005) and sent[0] < len(seq):
        due = min(len(seq), int((time.monotonic() - t0) * rate))
        infos += [pub.publish(f"vesper/{d}/status/alerts", json.dumps(b), qos=1) for d, b in seq[sent[0] : due]]
        sent[0] = max(sent[0], due)
    for info in infos:
        info.wait_for_publish(60)
    pub.disconnect()
    pub.loop_stop()


def logged_at(text: str, needle: str) -> float:
    """The wall-clock time of the first log line containing `needle` (the ingest's lines begin with asctime)."""
    line = next(line for line in text.splitlines() if needle in line)
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def first_commit(conn: store.Connection, before: int, killed_at: float, timeout: float = 30) -> float:
    """When an event stamped after the kill (so the new leader's) is first visible: last_event_id as the gate."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if store.last_event_id(conn) > before:  # committed; the rows' stamps tell whose commit it is
            rows = store.event_rows_after(conn, before, 1_000_000)
            if any(row[1] >= killed_at for row in rows):
                return time.time()
            before = max([before, *(row[0] for row in rows)])  # the killed leader's last commit, landing late
        time.sleep(0.002)
    raise RuntimeError(f"no commit within {timeout} s of the kill")


def start_ingest(stack: Stack, n: int, needle: str = "standby:") -> tuple[str, Popen[bytes]]:
    """Start ingest number n and wait until its log says `needle` (a standby's, by default)."""
    name, proc = f"ingest-{n}", stack.start(f"ingest-{n}", INGEST)
    stack.wait_log(name, needle)
    return name, proc


def kill_leader(stack: Stack, conn: store.Connection, leader: Popen[bytes], standby: str) -> dict[str, float]:
    """SIGKILL the leader; seconds from the kill to the standby's lock, its MQTT connection and its first commit."""
    before = store.last_event_id(conn)
    leader.kill()
    killed_at = time.time()
    committed = first_commit(conn, before, killed_at)
    stack.wait_log(standby, "connected to")
    lock, connected = (logged_at(stack.log(standby), needle) - killed_at for needle in ("leading:", "connected to"))
    return {"lock": lock, "connected": connected, "commit": committed - killed_at}


def compare(conn: store.Connection, published: list[Transition], timeout: float = 60) -> tuple[str, float]:
    """'0 lost' once the active-alert table is what `published` implies (each alert event there once); seconds taken."""
    expected, t0 = implied_state(published), time.monotonic()
    while (actual := store.all_alerts(conn)) != expected and time.monotonic() < t0 + timeout:
        time.sleep(0.2)
    if actual != expected:
        return f"{len(set(expected) - set(actual))} rows missing, {len(set(actual) - set(expected))} wrong", timeout
    caught_up = time.monotonic() - t0
    events = [
        (e["type"], e["source_id"], e["payload"]["subsystem"], e["payload"].get("message"))
        for e in store.events_after(conn, 0, limit=10_000_000)
        if e["type"] in ("alert", "alert_cleared")
    ]
    want = implied_events(published)
    if sorted(events, key=lambda e: e[1]) != sorted(want, key=lambda e: e[1]):  # stable: per device, in order
        gone = sorted(int(e[3][1:]) for e in Counter(want) - Counter(events) if e[3]) or [-1]  # msg "t<i>": seq index
        return f"state ok; events {len(events):,} of {len(want):,}, alerts t{gone[0]}..t{gone[-1]} missing", caught_up
    return "0 lost", caught_up


def takeover(server: Postgres, s: Sizes, tmp: Path) -> list[Row]:
    """2: kill the leader `s.kills` times under a steady stream; a new standby after each kill."""
    url = server.url(server.create_database())
    stack = Stack(
        Path(tempfile.mkdtemp(prefix="takeover-", dir=tmp)), database={"url": url}, liveness={"sweep_interval_s": 0.2}
    )
    seq = transitions(int(s.stream_rate * (s.kills * (s.settle_s + 10) + 20)), 1000, seed=13)
    stopping, sent = threading.Event(), [0]
    publisher = threading.Thread(target=stream, args=(stack.port, seq, s.stream_rate, stopping, sent), daemon=True)
    conn = store.connect(url, readonly=True)
    try:
        leader = start_ingest(stack, 0, "connected to")[1]
        standby, proc = start_ingest(stack, 1)
        publisher.start()
        kills = []
        for k in range(s.kills):
            time.sleep(s.settle_s)
            kills.append(kill_leader(stack, conn, leader, standby))
            log(f"2: kill {k + 1}: " + ", ".join(f"{key} {v:.3f} s" for key, v in kills[-1].items()))
            leader, (standby, proc) = proc, start_ingest(stack, k + 2)
        stopping.set()
        publisher.join(90)
        lost, caught_up = compare(conn, seq[: sent[0]])
    finally:
        stopping.set()
        conn.close()
        stack.close()

    def spread(key: str) -> str:
        values = [k[key] for k in kills]
        return f"{statistics.median(values):.3f} / {max(values):.3f} s"

    slowest = max(k["connected"] for k in kills)
    return [
        (f"2 takeover: {len(kills)} SIGKILLs of the leader, {s.stream_rate:,.0f} QoS 1 alerts/s", "", "", "", None),
        ("  kill -> standby holds the lock ('leading:'): median / max", "", spread("lock"), "", None),
        ("  kill -> standby 'connected to': median / max", "", spread("connected"), "< 2 s", slowest < 2),
        ("  kill -> standby's first commit: median / max", "", spread("commit"), "", None),
        (f"  {sent[0]:,} published; all in {caught_up:.1f} s after the stream", "", lost, "0 lost", lost == "0 lost"),
    ]  # fmt: skip


def api(server: Postgres, s: Sizes, tmp: Path) -> list[Row]:
    """3: bench.api_latency on each engine."""
    r = {}
    for engine in ("sqlite", "pg"):
        url = server.url(server.create_database()) if engine == "pg" else ""
        with tempfile.TemporaryDirectory(prefix=f"api-{engine}-", dir=tmp) as d:
            r[engine] = api_latency.measure(s.api_devices, s.api_lists, s.api_alerts, s.api_rounds, Path(d), url)
        log(f"3: {engine}: " + ", ".join(f"{k} {v:.1f}" for k, v in r[engine].items()))

    def cells(name: str) -> tuple[str, str]:
        return tuple(f"{r[e][name + '_p50_ms']:.1f} / {r[e][name + '_p99_ms']:.1f} ms" for e in ("sqlite", "pg"))

    worst = {name: max(r[e][name + "_p99_ms"] for e in r) for name in ("devices", "alerts")}
    return [
        (f"3 GET /api/devices, {s.api_devices:,} devices ({r['pg']['devices_kib']:,.0f} KiB): p50 / p99",
         *cells("devices"), "p99 <= 50 ms", worst["devices"] <= 50),
        ("  GET /api/devices/{id}/alerts: p50 / p99", *cells("alerts"), "p99 <= 50 ms", worst["alerts"] <= 50),
    ]  # fmt: skip


def print_table(header: list[str], rows: list[Row], verdicts: bool) -> None:
    """The figures, one row each, with the target and whether it was met."""
    cells = [("figure", "SQLite", "PostgreSQL", "target", "")]
    cells += [(f, a, b, t, "" if m is None or not verdicts else "met" if m else "MISSED") for f, a, b, t, m in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(5)]
    print("\n".join(header) + "\n")
    for c in cells:
        print("  ".join(v.rjust(widths[i]) if i in (1, 2) else v.ljust(widths[i]) for i, v in enumerate(c)).rstrip())
    print("\n" + "\n".join(NOTES))


NOTES = [
    "1: rate = backlog / drain time of a fresh ingest on a fresh database; the bare paho row is the broker's limit.",
    "2: kill (time.time()) -> the standby's log lines (asctime), -> the first event it committed (polled every 2 ms),",
    "   i.e. its first batch (up to ingest.max_batch = 1000 of the backlog). flap_transitions 0, sweep_interval_s 0.2.",
    "3: sequential GETs on one keep-alive connection, one gevent worker, the fleet written as the ingest leaves it.",
]
PARTS: dict[str, Callable[[Postgres, Sizes, Path], list[Row]]] = {"1": ingest_rates, "2": takeover, "3": api}


def main(argv: list[str] | None = None) -> int:
    """Start a PostgreSQL, run the three parts, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test, not figures)")
    args = parser.parse_args(argv)
    s = QUICK if args.quick else FULL
    started = time.monotonic()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="vesper-bench-pg-") as tmp, pg_server(Path(tmp)) as server:
        notes = engine_notes(server, Path(tmp))
        for name, part in PARTS.items():
            try:
                rows += part(server, s, Path(tmp))
            except Exception as exc:  # one part failing still prints the others
                traceback.print_exc()
                rows.append((f"{name} FAILED: {type(exc).__name__}: {exc}"[:100], "", "", "yes", False))
    mode = "QUICK (small sizes: a smoke test)" if args.quick else "full run"
    header = [
        f"Vesper on PostgreSQL beside SQLite (issue 13): {mode}, {time.monotonic() - started:,.0f} s, "
        f"{os.cpu_count()} cores shared by the broker, the ingests, the database, the web and the load generators",
        *notes,
        "command: .venv/bin/python -m bench.postgres" + (" --quick" if args.quick else ""),
    ]
    print_table(header, rows, verdicts=not args.quick)
    return 1 if any(row[3] in ("yes", "0 lost") and row[4] is False for row in rows) else 0  # a loss or a failure


if __name__ == "__main__":
    sys.exit(main())
