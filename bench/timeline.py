"""The timeline's page at fleet size (§12): ~1,000,000 events, each filter, at the head and deep in the past.

For each filter of GET /api/events: the query plan (EXPLAIN) and the median time of one page (100 events) read
through shared/store/timeline.py, on SQLite and on PostgreSQL (harness/pg.py's throwaway server).
Run: .venv/bin/python -m bench.timeline [--events N] [--sqlite-only]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.pg import Postgres, PostgresError, find_bindir
from shared import store
from shared.vocabulary import EVENT_TYPES

DEVICES = 100_000
RARE_SITE, BIG_SITE, RARE_TAG = "rare-site", "big-site", "rare-tag"
# (type, severity, share of the events): playback is most of a real timeline, a silence the rarest
MIX = [
    ("playback_started", "info", 0.40), ("playback_stopped", "info", 0.40), ("alert", "warning", 0.07),
    ("alert", "critical", 0.03), ("alert_cleared", "info", 0.08), ("device_offline", "warning", 0.01),
    ("device_online", "info", 0.01), ("alert_acknowledged", "info", 0.0002), ("silence_created", "info", 0.00002),
]  # fmt: skip

def all_types() -> frozenset[str]:
    """Every event type of the vocabulary."""
    return frozenset(EVENT_TYPES)


def filters() -> dict[str, dict[str, Any]]:
    """The pages measured: each filter of the API, the rare ones included."""
    everything = all_types()
    return {
        "no filter": {},
        "not playback (the console's default)": {"types": everything - {"playback_started", "playback_stopped"}},
        "type=silence_created (rare)": {"types": frozenset({"silence_created"})},
        "type=alert_acknowledged&type=device_offline": {"types": frozenset({"alert_acknowledged", "device_offline"})},
        "severity=critical": {"severities": frozenset({"critical"})},
        "severity=warning,critical & not playback": {
            "severities": frozenset({"warning", "critical"}),
            "types": everything - {"playback_started", "playback_stopped"},
        },
        "device=d-000042": {"device": "d-000042"},
        f"site={RARE_SITE} (10 devices)": {"site": RARE_SITE},
        f"site={BIG_SITE} (1,000 devices)": {"site": BIG_SITE},
        f"tag={RARE_TAG} (5 devices)": {"tag": RARE_TAG},
        f"site={BIG_SITE}&type=device_offline": {"site": BIG_SITE, "types": frozenset({"device_offline"})},
    }


def fill(conn: store.Connection, events: int) -> None:
    """`events` events over DEVICES devices, a rare and a big site, a rare tag; one transaction."""
    rng = random.Random(7)
    kinds = [(t, s) for t, s, _ in MIX]
    weights = [w for _, _, w in MIX]
    conn.execute("BEGIN")
    registry = [(f"d-{n:06d}", RARE_SITE if n < 10 else BIG_SITE if n < 1010 else None, 0.0) for n in range(DEVICES)]
    _many(conn, "INSERT INTO registry (device_id, site, updated_at) VALUES (?, ?, ?)", registry)
    _many(conn, "INSERT INTO device_tags (tag, device_id) VALUES (?, ?)", [(RARE_TAG, f"d-{n:06d}") for n in range(5)])
    chunk = 50_000
    for start in range(1, events + 1, chunk):
        rows = []
        for event_id in range(start, min(start + chunk, events + 1)):
            kind, severity = rng.choices(kinds, weights)[0]
            rows.append((event_id, float(event_id), kind, severity, f"d-{rng.randrange(DEVICES):06d}", "{}"))
        _many(conn, "INSERT INTO events (id, ts, type, severity, source_id, payload) VALUES (?, ?, ?, ?, ?, ?)", rows)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")


def _many(conn: store.Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
    conn.executemany(sql, rows)


def plan(conn: store.Connection, page: store.Timeline) -> str:
    """The engine's plan of the page's statement, in a few lines."""
    captured: list[tuple[str, list[Any]]] = []

    class Spy:
        def __init__(self, inner: store.Connection) -> None:
            self.inner, self.dialect = inner, inner.dialect

        def execute(self, sql: str, args: Any = ()) -> Any:
            if sql.startswith("SELECT id, ts"):
                captured.append((sql, list(args)))
                return self.inner.execute("SELECT 1 WHERE 1 = 0")
            return self.inner.execute(sql, args)

    store.timeline(Spy(conn), page)  # type: ignore[arg-type]
    if not captured:
        return "(no statement: nothing can match)"
    sql, args = captured[0]
    prefix = "EXPLAIN QUERY PLAN " if "sqlite" in type(conn).__name__.lower() else "EXPLAIN (ANALYZE, BUFFERS OFF) "
    rows = conn.execute(prefix + sql, args).fetchall()
    return "\n".join("    " + " | ".join(str(c) for c in row[-1:]) for row in rows)


def measure(conn: store.Connection, name: str, events: int, show_plans: bool) -> None:
    """Each filter's page at the head and before the middle id: median of 7 reads, ms."""
    print(f"\n## {name}: {events:,} events, {DEVICES:,} devices")
    for label, spec in filters().items():
        times = {}
        for where, before in (("head", None), ("middle", events // 2)):
            page = store.Timeline(limit=100, before=before, **spec)
            runs = []
            for _ in range(7):
                began = time.perf_counter()
                got = store.timeline(conn, page)
                runs.append(time.perf_counter() - began)
            times[where] = (statistics.median(runs) * 1000, len(got))
        (h, hn), (m, mn) = times["head"], times["middle"]
        print(f"- {label}: head {h:.1f} ms ({hn} rows), middle {m:.1f} ms ({mn} rows)")
        if show_plans:
            print(plan(conn, store.Timeline(limit=100, before=events // 2, **spec)))


def main() -> None:
    """Fill each engine once and measure."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--plans", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        conn = store.open_store(Path(tmp) / "timeline.db")
        fill(conn, args.events)
        measure(conn, "SQLite", args.events, args.plans)
        conn.close()
        if args.sqlite_only:
            return
        server = Postgres(find_bindir(), Path(tmp))
        try:
            server.init()
            server.start()
            conn = store.open_store(server.url(server.create_database()))
            fill(conn, args.events)
            measure(conn, "PostgreSQL", args.events, args.plans)
            conn.close()
        except PostgresError as exc:
            print(f"PostgreSQL: {exc}", file=sys.stderr)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
