"""History at fleet size (§13): 100,000 devices x 400 days of episodes (~20 million) on SQLite and PostgreSQL.

In process (shared/store/history.py, one read-only connection): a month's availability by site (the last 30 days
and a month a year ago), devices' histories, the incident list's first page, the top problems; each beside the
rows it reads (the window's episodes, by the episodes_span ranges; a device's by episodes_device) read alone.
Through the real web (gunicorn, one gevent worker): GET /api/reports/availability?group_by=site and
GET /api/devices/{id}/history, each beside the same call in process plus GET /healthz on the same connection.
The database's size per million episodes; then the ingest's drain with history on beside off (history_ingest.py).
The SQLite file is cached in /tmp/vesper-bench-history (bench/history_data.py); PostgreSQL is loaded from it.
Run: .venv/bin/python -m bench.history [--devices 100000] [--days 400] [--sites 20000] [--engines sqlite pg] [--quick]
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench import history_data, history_ingest
from bench.api_latency import timed_get
from bench.common import Stack
from bench.history_data import DAY, Shape
from bench.postgres import pg_server
from bench.table import Table
from shared import store
from shared.events import iso
from shared.store import episodes

ZONE = "UTC"
DEVICES_SAMPLED = 10  # devices whose history is read, a troubled one among them


def windows(now: float) -> dict[str, tuple[float, float]]:
    """The report windows: the last 30 days and a month a year ago."""
    return {"last 30 days": (now - 30 * DAY, now), "a month a year ago": (now - 365 * DAY, now - 335 * DAY)}


def timed(call: Callable[[], Any], runs: int) -> tuple[float, Any]:
    """The median seconds of `runs` calls (after one to warm), and the last result."""
    out = call()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = call()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def window_rows(conn: store.Connection, start: float, end: float) -> int:
    """The yardstick of a report: the window's outages and incidents read alone (episodes.overlapping_sql)."""
    sql = episodes.overlapping_sql("e.id, e.device_id, e.started, e.ended, e.ack_at")
    return sum(len(conn.execute(sql, (kind, start, end)).fetchall()) for kind in ("outage", "incident"))


def device_rows(conn: store.Connection, device_id: str, start: float) -> int:
    """The yardstick of a device's history: its episodes since `start` read alone (episodes_device)."""
    sql = "SELECT id, kind, subsystem, started, ended, worst FROM episodes WHERE device_id = ? AND started >= ?"
    return len(conn.execute(sql, (device_id, start)).fetchall())


def sample(shape: Shape) -> list[str]:
    """Which devices' histories are read: spread over the fleet."""
    step = max(1, shape.devices // DEVICES_SAMPLED)
    return [history_data.device_id(n) for n in range(0, shape.devices, step)][:DEVICES_SAMPLED]


def in_process(table: Table, section: str, target: str | Path, shape: Shape, now: float, runs: int) -> dict[str, float]:
    """The read API's calls timed in process, each beside the rows it reads; returns the figures for the web's rows."""
    from shared.store import history

    conn = store.connect(target, readonly=True)
    figures: dict[str, float] = {}
    try:
        for name, (start, end) in windows(now).items():
            report_call = lambda s=start, e=end: history.availability_report(conn, s, e, now, "site", ZONE)  # noqa: E731
            took, report = timed(report_call, runs)
            floor, n = timed(lambda s=start, e=end: window_rows(conn, s, e), runs)
            figures[name], figures[f"{name} floor"] = took, floor
            table.add(section, f"availability by site, {name} ({len(report['rows']):,} sites, {n:,} episodes)",
                      f"{took * 1000:,.0f} ms", yard=f"its episodes read alone: {floor * 1000:,.0f} ms",
                      ratio=took / floor, target="<= 2 s", met=took <= 2.0)  # fmt: skip
        start = now - 30 * DAY
        dev = [timed(lambda d=d: history.device_history(conn, d, start, now, now), runs) for d in sample(shape)]
        rows = [timed(lambda d=d: device_rows(conn, d, now - 90 * DAY), runs)[0] for d in sample(shape)]
        took, worst = statistics.median(t for t, _ in dev), max(t for t, _ in dev)
        figures["device"] = took
        count = max(len(out["episodes"]) for _, out in dev)
        table.add(section, f"device history, 30 days ({len(dev)} devices, up to {count} episodes): median / max",
                  f"{took * 1000:.1f} / {worst * 1000:.1f} ms",
                  yard=f"its 90 days' episodes read alone: {statistics.median(rows) * 1000:.1f} ms",
                  ratio=took / statistics.median(rows), target="<= 100 ms", met=worst <= 0.1)  # fmt: skip
        took, (page, _) = timed(lambda: history.incidents(conn, now - 30 * DAY, now, now, limit=100), runs)
        table.add(section, f"incidents, first page ({len(page)} rows)", f"{took * 1000:.1f} ms")
        took, _ = timed(lambda: history.problems(conn, now - 30 * DAY, now, now), runs)
        floor = figures["last 30 days floor"]
        table.add(section, "problems, last 30 days", f"{took * 1000:,.0f} ms",
                  yard=f"its episodes read alone: {floor * 1000:,.0f} ms", ratio=took / floor)  # fmt: skip
    finally:
        conn.close()
    return figures


def web_paths(shape: Shape, now: float) -> dict[str, str]:
    """The GETs measured through the web: the report by site for the last 30 days, a device's history."""
    start, end = quote(iso(now - 30 * DAY)), quote(iso(now))
    device = sample(shape)[1 if len(sample(shape)) > 1 else 0]
    return {
        "report": f"/api/reports/availability?group_by=site&from={start}&to={end}",
        "device": f"/api/devices/{device}/history?from={start}&to={end}",
    }


def get(port: int, path: str, check: bool = True) -> float:
    """One GET's seconds on a connection opened before the clock starts (a report outlasts the keep-alive).

    With check=False: its status, untimed.
    """
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.connect()
    try:
        if not check:
            conn.request("GET", path)
            answer = conn.getresponse()
            answer.read()
            return answer.status
        return timed_get(conn, path)[0]
    finally:
        conn.close()


def through_web(table: Table, section: str, target: str | Path, shape: Shape, now: float, runs: int) -> None:
    """GETs to real gunicorn (one gevent worker), each beside the same call in process + GET /healthz."""
    from shared.store import history

    database = {"url": str(target)} if str(target).startswith("postgresql") else {"path": str(target)}
    with tempfile.TemporaryDirectory(prefix="vesper-history-web-") as tmp:
        stack = Stack(Path(tmp), web={"workers": 1}, database=database, history={"timezone": ZONE})
        conn = store.connect(target, readonly=True)
        try:
            stack.web()
            paths = web_paths(shape, now)
            calls = {
                "report": lambda: history.availability_report(conn, now - 30 * DAY, now, time.time(), "site", ZONE),
                "device": lambda: history.device_history(conn, sample(shape)[1], now - 30 * DAY, now, time.time()),
            }
            for name, path in paths.items():
                if get(stack.web_port, path, check=False) == 404:
                    table.add(section, f"GET {path.split('?')[0]}", "route not there yet")
                    continue
                web = [get(stack.web_port, path) for _ in range(runs)]
                inproc = [timed(calls[name], 1)[0] for _ in range(runs)]
                floor = [get(stack.web_port, "/healthz") for _ in range(runs)]
                w, i, f = (statistics.median(x) for x in (web, inproc, floor))
                bound = 2.0 if name == "report" else 0.1
                table.add(section, f"GET {path.split('?')[0]}{'?group_by=site' * (name == 'report')}, 30 days",
                          f"{w * 1000:,.1f} ms", yard=f"in process {i * 1000:,.1f} + GET /healthz {f * 1000:.1f} ms",
                          ratio=w / (i + f), target=f"<= {bound * 1000:,.0f} ms", met=w <= bound)  # fmt: skip
        finally:
            conn.close()
            stack.close()


def sizes(table: Table, section: str, target: str | Path, count: int) -> None:
    """The database's size per million episodes (SQLite: the file; PostgreSQL: the episodes table with its indexes)."""
    millions = count / 1e6
    if str(target).startswith("postgresql"):
        conn = store.connect(target, readonly=True)
        table_bytes, whole = conn.execute(
            "SELECT pg_total_relation_size('episodes'), pg_database_size(current_database())"
        ).fetchone()
        conn.close()
        value, yard = table_bytes / millions, f"whole database {whole / 2**30:.2f} GiB"
    else:
        value, yard = Path(target).stat().st_size / millions, "the file, every table"
    table.add(section, f"size per million episodes ({count:,} episodes)", f"{value / 2**20:,.0f} MiB", yard=yard)


def episode_count(target: str | Path) -> int:
    """How many episodes the store holds."""
    conn = store.connect(target, readonly=True)
    try:
        return int(conn.execute("SELECT count(*) FROM episodes").fetchone()[0])
    finally:
        conn.close()


def engine(table: Table, name: str, target: str | Path, shape: Shape, now: float, args: argparse.Namespace) -> None:
    """One engine's rows: the reads in process, through the web, the size."""
    count = episode_count(target)
    in_process(table, name, target, shape, now, args.runs)
    if not args.no_web:
        through_web(table, name, target, shape, now, args.runs)
    sizes(table, name, target, count)


def run(table: Table, shape: Shape, args: argparse.Namespace) -> None:
    """Build (or reuse) the history, measure SQLite, then PostgreSQL loaded from it, then the ingest."""
    path, now, built = history_data.sqlite_file(shape, fresh=args.fresh)
    table.add("sqlite", f"history built: {shape.devices:,} devices x {shape.days} days",
              f"{built:,.1f} s" if built else "cached", yard=str(path))  # fmt: skip
    if "sqlite" in args.engines:
        engine(table, "sqlite", path, shape, now, args)
    if "pg" in args.engines:
        with tempfile.TemporaryDirectory(prefix="vesper-history-pg-") as tmp, pg_server(Path(tmp)) as server:
            url = server.url(server.create_database())
            took = history_data.copy_to_postgres(path, url)
            table.add("pg", "history loaded from the SQLite file (COPY, indexes, ANALYZE)", f"{took:,.0f} s")
            engine(table, "pg", url, shape, now, args)
    if not args.no_ingest:
        history_ingest.rows(table, args.ingest_messages, args.ingest_rounds)


def main(argv: list[str] | None = None) -> int:
    """Measure and print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=400)
    parser.add_argument("--sites", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5, help="timed calls of each read (medians)")
    parser.add_argument("--ingest-messages", type=int, default=20_000)
    parser.add_argument("--ingest-rounds", type=int, default=3)
    parser.add_argument("--fresh", action="store_true", help="rebuild the cached SQLite file")
    parser.add_argument("--engines", nargs="+", choices=["sqlite", "pg"], default=["sqlite", "pg"])
    parser.add_argument("--no-web", action="store_true")
    parser.add_argument("--no-ingest", action="store_true")
    parser.add_argument("--quick", action="store_true", help="a smoke test: 300 devices x 20 days, small ingest")
    args = parser.parse_args(argv)
    if args.quick:
        args.devices, args.days, args.sites, args.runs = 300, 20, 50, 1
        args.ingest_messages, args.ingest_rounds = 1000, 1
    shape = Shape(args.devices, args.days, min(args.sites, args.devices))
    table = Table(verdicts=not args.quick)
    started = time.time()
    run(table, shape, args)
    table.print([f"History (§13) bench: {shape.devices:,} devices x {shape.days} days, {time.time() - started:,.0f} s",
                 "command: .venv/bin/python -m bench.history " + " ".join(argv if argv is not None else sys.argv[1:])],
                NOTES)  # fmt: skip
    return 1 if table.failed else 0


NOTES = [
    "Reads: medians of --runs calls after one to warm, on one read-only connection; now = the data's end. The",
    "yardstick of a report is the window's episodes read alone (the index ranges of episodes.overlapping_sql), of a",
    "device's history its 90 days' episodes read alone; through the web, the same call in process + GET /healthz.",
    "SQLite has no ANALYZE (the product never runs one); PostgreSQL is analyzed as autovacuum would after a load.",
    "Ingest: bench/history_ingest.py, a queued backlog of heartbeats bringing offline devices back and alerts raised",
    "and cleared, drained by the real ingest with history.retention_days = 400 and = 0, rounds interleaved.",
]


if __name__ == "__main__":
    sys.exit(main())
