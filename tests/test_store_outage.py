"""The store's outages are not the fleet's (SPEC §16), in-process: a real SQLite file locked by another connection.

The lock makes the ingest's writes fail for real (a short busy timeout on its connection, so a test need
not wait SQLite's 10 s); the clock is the test's, so "a full timeout of grace" is checked to the second.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared import config as config_mod
from shared import store
from shared.store import episodes
from tests.conftest import write_config
from tests.support import FakeClock, wait_for
from tests.test_ingest_inprocess import EPSILON, TIMEOUT, close, counters, device, heartbeat, sweep_at, types
from vesper_ingest.outage import StoreOutage, stall_after_s
from vesper_ingest.service import Ingest
from vesper_ingest.stats import Stats
from vesper_sim import broker as broker_mod

pytestmark = pytest.mark.sqlite_only("locks the SQLite file from a second connection")

WAIT = 30.0


@pytest.fixture
def live(tmp_path: Path, db_path: Path, clock: FakeClock) -> Iterator[Ingest]:
    """A connected ingest whose writes give up after 50 ms of a held lock (SQLite's own wait is 10 s)."""
    liveness = {"heartbeat_timeout_s": TIMEOUT}
    toml = write_config(tmp_path / "vesper.toml", broker_mod.free_port(), db_path, liveness=liveness)
    built = Ingest(config_mod.load(toml), clock=clock)
    built.conn.execute("PRAGMA busy_timeout = 50")
    built.connected()
    yield built
    built.stopping.set()
    close(built)


class Lock:
    """Another connection holding the database's write lock until released."""

    def __init__(self, db: Path) -> None:
        self.conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        self.conn.execute("BEGIN EXCLUSIVE")

    def release(self) -> None:
        """Roll back and close: writes work again."""
        self.conn.execute("ROLLBACK")
        self.conn.close()


def test_writes_that_work_again_give_every_device_a_full_timeout(live: Ingest, clock: FakeClock, db_path: Path) -> None:
    live.process([heartbeat(live, "bell-1")])
    clock.advance(TIMEOUT - 1)
    lock = Lock(db_path)
    try:
        stalled = threading.Thread(target=live.process, args=([heartbeat(live, "bell-2")],))
        stalled.start()  # it retries each second until the lock goes, acknowledging nothing
        wait_for(lambda: live.outage.attempts >= 1, WAIT, "a failed write")
        clock.advance(5)  # bell-1 silent for TIMEOUT + 4 s, the outage's time included
    finally:
        lock.release()
    stalled.join(WAIT)
    assert not stalled.is_alive()
    back = clock()
    for now in (back, back + TIMEOUT - EPSILON):
        sweep_at(live, clock, now)
        assert "device_offline" not in types(db_path)
    assert device(db_path, "bell-2")["liveness"] == "online"  # the stalled batch was stored, and acked after
    sweep_at(live, clock, back + TIMEOUT)
    assert types(db_path).count("device_offline") == 2  # both silent since: the grace is one timeout, no more
    assert counters(db_path)["store.write_failures"] >= 1 and counters(db_path)["ingest.stalls"] == 1


def test_a_failing_sweep_is_said_once_and_retried(live: Ingest, clock: FakeClock, db_path: Path, caplog) -> None:
    caplog.set_level(logging.WARNING)
    live.process([heartbeat(live)])
    lock = Lock(db_path)
    try:
        for _ in range(5):
            sweep_at(live, clock, clock() + 1)
    finally:
        lock.release()
    failed = [r for r in caplog.records if "database write failed" in r.getMessage()]
    assert len(failed) == 1 and failed[0].exc_info is None  # one line, no traceback
    assert "the sweep" in failed[0].getMessage() and "locked" in failed[0].getMessage()
    sweep_at(live, clock, clock() + 1)
    assert any("database writes work again" in r.getMessage() for r in caplog.records)
    assert counters(db_path)["store.write_failures"] == 5  # counted, then saved by the sweep that worked


def test_a_failing_prune_is_logged_and_not_fatal(live: Ingest, clock: FakeClock, db_path: Path, caplog) -> None:
    caplog.set_level(logging.WARNING)
    lock = Lock(db_path)
    try:
        assert live.prune(clock()) is False
    finally:
        lock.release()
    assert "pruning old events failed" in caplog.text and "Traceback" not in caplog.text
    assert live.prune(clock()) is True
    sweep_at(live, clock, clock() + 1)
    assert counters(db_path)["store.prune_failures"] == 1


def test_the_outage_is_said_once_a_minute_with_what_was_held_back(caplog) -> None:
    caplog.set_level(logging.WARNING, "vesper_ingest.outage")
    mono = FakeClock(0.0)
    outage = StoreOutage(Stats(), mono)
    for _ in range(59):
        outage.failed("a batch of 3 messages", "disk I/O error")
        mono.advance(1)
    assert len(caplog.records) == 1
    mono.advance(1)
    outage.failed("the sweep", "database or disk is full")
    assert len(caplog.records) == 2 and "(+58 more since)" in caplog.records[1].getMessage()
    assert outage.worked() is True and "after 60.0 s (60 failed attempts)" in caplog.records[2].getMessage()
    assert outage.worked() is False and len(caplog.records) == 3


@pytest.mark.parametrize(
    ("sweep_s", "timeout_s", "bound_s"), [(1.0, 90.0, 5.0), (0.2, 4.0, 4 / 3), (2.0, 600.0, 10.0)]
)
def test_the_stall_bound(sweep_s: float, timeout_s: float, bound_s: float) -> None:
    assert stall_after_s(sweep_s, timeout_s) == pytest.approx(bound_s)


def test_a_store_outage_past_the_gap_bound_is_blind_in_history(live: Ingest, clock: FakeClock, db_path: Path) -> None:
    """History (§13): the stretch the ingest could not write is unknown time, not down: one closed blind episode."""
    first = clock() + 1
    lock = Lock(db_path)
    try:
        sweep_at(live, clock, first)  # fails: the outage starts
        clock.advance(60)  # past the gap bound (liveness.interrupted_after_s, 30 s)
    finally:
        lock.release()
    sweep_at(live, clock, first + 61)
    blind = [(e.device_id, e.started, e.ended) for e in stored_episodes(db_path) if e.kind == "blind"]
    assert blind == [(live.cfg.mqtt.client_id, first, first + 61)]


def stored_episodes(db: Path) -> list[episodes.Episode]:
    """Every episode in the file."""
    conn = store.connect(db, readonly=True)
    try:
        return episodes.load_all(conn)
    finally:
        conn.close()
