"""The notification sink inside the ingest, in process: a fake clock, a real SQLite file, no broker, no sender."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shared import config as config_mod
from shared import store
from tests.conftest import write_config
from tests.support import FakeClock
from vesper_ingest.batch import Inbound
from vesper_ingest.service import Ingest
from vesper_sim import broker as broker_mod

T0 = 1_700_000_000.0
CRITICAL = b'{"subsystem":"Audio","state":"CRITICAL","msg":"x"}'


@pytest.fixture
def ingest(tmp_path: Path, db_path: Path, clock: FakeClock) -> Iterator[Ingest]:
    """An ingest with one channel (never sent to: run() is not called) and a 5 s window."""
    path = write_config(tmp_path / "vesper.toml", broker_mod.free_port(), db_path)
    notify = '[notify]\n[[notify.channels]]\nname = "ops"\nurl = "json://127.0.0.1:9/x"\n'
    notify += '[[notify.rules]]\nchannel = "ops"\ngroup_wait_s = 5.0\n'
    path.write_text(path.read_text() + notify)
    ing = Ingest(config_mod.load(path), clock=clock)
    ing.connected()
    yield ing
    ing.writer.close()


def alert(ingest: Ingest, device: str, mid: int) -> None:
    """One CRITICAL alert processed as a batch."""
    ingest.process([Inbound(f"vesper/{device}/status/alerts", CRITICAL, False, mid, 1, ingest.generation)])


def queued(db: Path) -> list[dict]:
    """The delivery queue, oldest first."""
    conn = store.connect(db, readonly=True)
    try:
        return list(reversed(store.notifications(conn, 100)))
    finally:
        conn.close()


def test_the_window_then_one_message_then_nothing_more(ingest: Ingest, clock: FakeClock, db_path: Path) -> None:
    """Two alerts in 5 s are one queued message, decided when the window ends, and never again."""
    alert(ingest, "a", 1)
    clock.now += 2
    alert(ingest, "b", 2)
    ingest.outbox.flush()
    assert queued(db_path) == []
    clock.now += 3
    ingest.outbox.flush()
    [message] = queued(db_path)
    assert message["title"] == "Vesper: 2 critical alerts" and message["status"] == "pending"
    clock.now += 100
    ingest.outbox.flush()
    assert len(queued(db_path)) == 1


def test_a_restart_keeps_the_open_group_and_what_was_told(
    ingest: Ingest, clock: FakeClock, tmp_path: Path, db_path: Path
) -> None:
    """The grouper's state is in the database: a new Ingest closes the same group once."""
    alert(ingest, "a", 1)
    ingest.writer.close()
    again = Ingest(ingest.cfg, clock=clock)
    again.connected()
    clock.now += 5
    again.outbox.flush()
    assert [m["title"] for m in queued(db_path)] == ["Vesper: 1 critical alert"]
    again.writer.close()
    ingest.writer = store.Writer(db_path)  # for the fixture's teardown


def test_a_forgotten_device_that_returns_is_told_of_anew(ingest: Ingest, clock: FakeClock, db_path: Path) -> None:
    """DELETE /api/devices/{id} reaches the notifier too: what it was told of the device is dropped."""
    alert(ingest, "a", 1)
    clock.now += 5
    ingest.outbox.flush()
    conn = store.connect(db_path)
    with store.write(conn):
        store.forget(conn, "a", clock.now)
    conn.close()
    ingest.sweep(clock.now)
    alert(ingest, "a", 2)
    clock.now += 5
    ingest.outbox.flush()
    assert [m["title"] for m in queued(db_path)] == ["Vesper: 1 critical alert"] * 2
