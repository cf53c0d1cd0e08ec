"""SPEC §16: ids that were never registered and have gone silent for devices.forget_unregistered_after_days are
forgotten as a DELETE forgets them; registered devices never are. The store's query on both engines, then the
ingest in-process (a fake clock, the real store) and the API that lists what is left."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from shared import config as config_mod
from shared import store
from tests.conftest import write_config
from tests.support import FakeClock
from vesper_ingest import commands
from vesper_ingest.fleet import Fleet
from vesper_ingest.service import Inbound, Ingest
from vesper_sim import broker as broker_mod

DAY = 86400.0
T0 = 1_700_000_000.0
NOW = T0 + 100 * DAY
BEFORE = NOW - 30 * DAY


def seed(conn: store.Connection) -> None:
    """Heard 31 and 29 days ago (unregistered), registered and silent 90 days, never heard but registered, and
    known only from a retained heartbeat 31 days ago; the old one holds an alert and what a channel was told."""
    store.mark_all_alive(conn, [("old", NOW - 31 * DAY, None), ("recent", NOW - 29 * DAY, None)])
    store.mark_all_alive(conn, [("registered", NOW - 90 * DAY, None)])
    store.put_entry(conn, "registered", {"name": "kept", "site": None, "tags": ["x"], "notes": None,
                                         "heartbeat_timeout_s": None}, T0)  # fmt: skip
    store.put_entry(conn, "placeholder", {"name": "never", "site": None, "tags": [], "notes": None,
                                          "heartbeat_timeout_s": None}, T0)  # fmt: skip
    store.ensure_device(conn, "retained", NOW - 31 * DAY)
    store.upsert_alert(conn, "old", "Audio", "CRITICAL", "x", NOW - 31 * DAY)
    store.tell(conn, [("0:ops", "old", "", "offline", NOW - 31 * DAY, "old: offline", 0, None, None)])


def ids(conn: store.Connection) -> set[str]:
    """Every device row's id."""
    return {row[0] for row in conn.execute("SELECT id FROM devices")}


def test_the_store_finds_only_unregistered_ids_unheard_that_long(db_path: Path) -> None:
    """29 days kept, 31 days found (heard, or only known from a retained heartbeat); registered never; bounded."""
    writer = store.Writer(db_path)
    try:
        with writer.transaction() as conn:
            seed(conn)
            assert sorted(store.unregistered_unheard(conn, BEFORE, 10)) == ["old", "retained"]
            assert len(store.unregistered_unheard(conn, NOW, 1)) == 1
            assert store.unregistered_unheard(conn, NOW - 1000 * DAY, 10) == []
            store.forget_devices_state(conn, ["old", "retained"])
            assert ids(conn) == {"recent", "registered", "placeholder"}
            assert store.alerts(conn, "old") == []
            assert conn.execute("SELECT COUNT(*) FROM notify_told").fetchone()[0] == 0
    finally:
        writer.close()


@pytest.fixture
def ingest(tmp_path: Path, db_path: Path, clock: FakeClock) -> Iterator[Ingest]:
    """An ingest with a rule for device_offline (its grouper must forget too), not connected to any broker."""
    path = write_config(tmp_path / "vesper.toml", broker_mod.free_port(), db_path)
    notify = '[notify]\n[[notify.channels]]\nname = "ops"\nurl = "json://127.0.0.1:9/x"\n'
    path.write_text(path.read_text() + notify + '[[notify.rules]]\nchannel = "ops"\ngroup_wait_s = 5.0\n')
    ing = Ingest(config_mod.load(path), clock=clock)
    ing.connected()
    yield ing
    ing.writer.close()


def heard(ingest: Ingest, clock: FakeClock, at: float, *devices: str) -> None:
    """A heartbeat of each device at `at`."""
    clock.now = at
    ingest.process([Inbound(f"vesper/{d}/status/heartbeat", b"{}", False, 0, 0, ingest.generation) for d in devices])


def test_the_ingest_forgets_them_in_its_sweep(ingest: Ingest, clock: FakeClock, app: Flask) -> None:
    """Heard 31 days ago and never registered: gone from GET /api/devices, the mirror and the notifier; 29 days
    ago: kept; registered, silent far longer: kept. Counted."""
    with ingest.writer.transaction() as conn:
        store.put_entry(conn, "registered", {"name": "kept", "site": None, "tags": [], "notes": None,
                                             "heartbeat_timeout_s": None}, T0)  # fmt: skip
    heard(ingest, clock, NOW - 90 * DAY, "registered")
    heard(ingest, clock, NOW - 31 * DAY, "old")
    clock.now += 100  # the grouper tells its channel "old" is offline
    ingest.sweep(clock.now)
    clock.now += 5
    ingest.outbox.flush()
    assert ("old", "") in ingest.notifier.sink.grouper.told["0:ops"]
    heard(ingest, clock, NOW - 29 * DAY, "recent")
    clock.now = NOW
    ingest.sweep(NOW)
    listed = {d["id"] for d in app.test_client().get("/api/devices").get_json()}
    assert listed == {"registered", "recent"}
    assert "old" not in ingest.fleet.devices and ("old", "") not in ingest.notifier.sink.grouper.told["0:ops"]
    assert ingest.stats.take_unsaved().get("devices.forgotten_unregistered") == 1
    clock.now = NOW + 2 * DAY  # now "recent" is 31 days silent too
    ingest.sweep(clock.now)
    assert {d["id"] for d in app.test_client().get("/api/devices").get_json()} == {"registered"}


def test_the_configured_days_apply(db_path: Path, clock: FakeClock) -> None:
    """devices.forget_unregistered_after_days is what carry_out reads (a shorter setting forgets sooner)."""
    writer = store.Writer(db_path)
    try:
        with writer.transaction() as conn:
            seed(conn)
            fleet, counts = Fleet(conn), Counter[str]()
            done = commands.carry_out(conn, fleet, counts, NOW, config_mod.DevicesConfig(28.0))
            assert sorted(done.forgotten) == ["old", "recent", "retained"]
            assert counts["devices.forgotten_unregistered"] == 3
    finally:
        writer.close()
