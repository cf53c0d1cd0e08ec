"""A big outage (§16): the sweep that declares 50,000 devices offline at once, and the one message it makes.

The real ingest in-process (vesper_ingest/service.py, a fake clock, no broker): N devices heard once, then one
sweep past their timeout. Figures, each engine: the sweep's seconds (its transaction: the set-based compare-and-set
and the N events, then the hand-off to the sinks, which groups them into the notifier's stored ops), beside the
same run's yardstick: the N events inserted alone in one transaction (what any sweep announcing N must write).
Then the group's window ends: how many messages it made, its title, and the seconds to build and queue it.
Run: .venv/bin/python -m bench.sweep_outage [--devices 50000] [--postgresql]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.clock import FakeClock
from shared import config as config_mod
from shared import store
from shared.events import NewEvent
from vesper_ingest.batch import Inbound, store_events
from vesper_ingest.service import Ingest

T0 = 1_700_000_000.0
TIMEOUT = 90.0
WAIT = 30.0
HB = "heartbeat"
NOTIFY = (
    '[notify]\n[[notify.channels]]\nname = "ops"\nurl = "json://127.0.0.1:9/x"\n'
    f'[[notify.rules]]\nchannel = "ops"\ntypes = ["device_offline"]\ngroup_wait_s = {WAIT}\n'
)


def config(tmp: Path, target: str) -> config_mod.Config:
    """One rule for device_offline (every device), a 90 s timeout, the given database; nothing listens on MQTT."""
    database = f'url = "{target}"' if target.startswith("postgresql") else f'path = "{target}"'
    text = f"[mqtt]\nport = 9\n[database]\n{database}\n[liveness]\nheartbeat_timeout_s = {TIMEOUT}\n" + NOTIFY
    (tmp / "vesper.toml").write_text(text)
    return config_mod.load(tmp / "vesper.toml")


def outage(target: str, tmp: Path, n: int) -> dict[str, Any]:
    """N devices heard at T0, one sweep past their timeout, then the group's end: seconds and what was queued."""
    clock = FakeClock(T0)
    ingest = Ingest(config(tmp, target), clock=clock)
    try:
        ingest.connected()
        ingest.process([Inbound(f"vesper/dev-{i:06d}/status/{HB}", b"{}", False, 0, 0, 0) for i in range(n)])
        clock.now = T0 + TIMEOUT
        handed = timed(ingest.outbox)
        t0 = time.perf_counter()
        ingest.sweep(clock.now)
        swept = time.perf_counter() - t0
        conn = ingest.conn
        offline = conn.execute("SELECT COUNT(*) FROM devices WHERE liveness = 'offline'").fetchone()[0]
        clock.now += WAIT
        t0 = time.perf_counter()
        ingest.outbox.flush()
        closed = time.perf_counter() - t0
        messages = store.notifications(conn, 100)
    finally:
        ingest.writer.close()
    declared = swept - handed[0]
    return {"sweep_s": swept, "declared_s": declared, "offline": offline, "close_s": closed, "messages": messages}


def timed(outbox: Any) -> list[float]:
    """Time the outbox's next flush (the hand-off to the sinks: the notifier groups the events there)."""
    took, flush = [0.0], outbox.flush

    def measured(*args: Any) -> None:
        t0 = time.perf_counter()
        flush(*args)
        took[0] += time.perf_counter() - t0
        outbox.flush = flush

    outbox.flush = measured
    return took


def events_alone(target: str, n: int) -> float:
    """The yardstick: N device_offline events inserted in one transaction, as store_events does."""
    writer = store.Writer(target)
    try:
        events = [NewEvent("device_offline", f"dev-{i:06d}", {"last_seen": "x"}) for i in range(n)]
        t0 = time.perf_counter()
        with writer.transaction() as conn:
            store_events(conn, events, T0, Counter(), None)
        return time.perf_counter() - t0
    finally:
        writer.close()


@contextmanager
def engines(tmp: Path, postgresql: bool) -> Iterator[list[tuple[str, Any]]]:
    """SQLite, and PostgreSQL (harness/pg.py's server, fsync on) if asked: (name, a fresh database per call)."""
    files = iter(range(1_000_000))
    found: list[tuple[str, Any]] = [("SQLite", lambda: str(tmp / f"db-{next(files)}.sqlite"))]
    if not postgresql:
        yield found
        return
    from bench.postgres import pg_server

    (tmp / "pg").mkdir()
    with pg_server(tmp / "pg") as server:
        yield [*found, ("PostgreSQL", lambda: server.url(server.create_database()))]


def main(argv: list[str] | None = None) -> int:
    """Each engine: the outage's sweep beside the events alone, then the message; one line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=50_000)
    parser.add_argument("--postgresql", action="store_true", help="also on PostgreSQL (harness/pg.py's server)")
    args = parser.parse_args(argv)
    n = args.devices
    failed = False
    with tempfile.TemporaryDirectory(prefix="vesper-outage-") as tmp, engines(Path(tmp), args.postgresql) as found:
        for name, fresh in found:
            yard = events_alone(fresh(), n)
            r = outage(fresh(), Path(tmp), n)
            [*older, message] = r["messages"] or [None]
            title = message["title"] if message else "no message"
            held = r["sweep_s"] <= 1.0 and r["offline"] == n and message is not None and not older
            failed |= not held
            print(f"{name}: sweep declaring {r['offline']:,} of {n:,} offline: {r['sweep_s']:.2f} s"
                  f" [yardstick: the {n:,} events alone {yard:.2f} s; ratio {r['sweep_s'] / yard:.1f}]"
                  f" target <= 1 s: {'met' if r['sweep_s'] <= 1.0 else 'MISSED'}")  # fmt: skip
            print(f"{name}: of which declared and committed {r['declared_s']:.2f} s, handed to the sinks"
                  f" {r['sweep_s'] - r['declared_s']:.2f} s")  # fmt: skip
            print(f"{name}: the group's end: {len(r['messages'])} message(s) in {r['close_s']:.2f} s: {title!r}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
