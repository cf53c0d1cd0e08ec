"""The registry's per-device heartbeat_timeout_s in the liveness rule, in process with time passed in."""

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


@pytest.fixture
def ingest(tmp_path: Path, db_path: Path, clock: FakeClock) -> Iterator[Ingest]:
    """An ingest with a 3 s default timeout, connected at T0."""
    path = write_config(tmp_path / "v.toml", broker_mod.free_port(), db_path, liveness={"heartbeat_timeout_s": 3.0})
    ing = Ingest(config_mod.load(path), clock=clock)
    ing.connected()
    yield ing
    ing.writer.close()


def set_timeout(db: Path, device: str, seconds: float | None) -> None:
    """What PATCH /api/devices/{id} writes."""
    conn = store.connect(db)
    with store.write(conn):
        fields = {"name": None, "site": None, "tags": [], "notes": None, "heartbeat_timeout_s": seconds}
        store.put_entry(conn, device, fields, T0)
    conn.close()


def beat(ingest: Ingest, *devices: str) -> None:
    """A live heartbeat from each device, now."""
    ingest.process([Inbound(f"vesper/{d}/status/heartbeat", b"{}", False, 0, 0, ingest.generation) for d in devices])


def offline(db: Path) -> list[str]:
    """Devices offline, by id."""
    conn = store.connect(db, readonly=True)
    try:
        return [d["id"] for d in store.devices(conn) if d["liveness"] == "offline"]
    finally:
        conn.close()


def at(ingest: Ingest, clock: FakeClock, t: float) -> None:
    """Sweep at T0 + t."""
    clock.now = T0 + t
    ingest.sweep(clock.now)


def test_a_30_s_device_beside_a_3_s_default(ingest: Ingest, clock: FakeClock, db_path: Path) -> None:
    """Each device is overdue by its own timeout: the default one at 3 s, the slow one at 30 s, once each."""
    set_timeout(db_path, "slow", 30.0)
    beat(ingest, "fast", "slow")
    at(ingest, clock, 2.9)
    assert offline(db_path) == []
    at(ingest, clock, 3.0)
    assert offline(db_path) == ["fast"]
    at(ingest, clock, 29.9)
    assert offline(db_path) == ["fast"]
    at(ingest, clock, 30.0)
    assert offline(db_path) == ["fast", "slow"]
    at(ingest, clock, 60.0)
    conn = store.connect(db_path, readonly=True)
    assert [e["source_id"] for e in store.events_after(conn, 0) if e["type"] == "device_offline"] == ["fast", "slow"]
    conn.close()


def test_the_grace_after_a_connect_is_the_devices_own(ingest: Ingest, clock: FakeClock, db_path: Path) -> None:
    """After a (re)connect a device with a 30 s timeout gets 30 s of grace, not the default's 3."""
    set_timeout(db_path, "slow", 30.0)
    beat(ingest, "slow")
    ingest.disconnected()
    clock.now = T0 + 100
    ingest.connected()
    at(ingest, clock, 129.9)
    assert offline(db_path) == []
    at(ingest, clock, 130.0)
    assert offline(db_path) == ["slow"]


def test_a_change_applies_without_a_restart(ingest: Ingest, clock: FakeClock, db_path: Path) -> None:
    """Shortening a device's timeout takes effect at the next sweep; removing it falls back to the default."""
    set_timeout(db_path, "d", 60.0)
    beat(ingest, "d")
    at(ingest, clock, 10.0)
    assert offline(db_path) == []
    set_timeout(db_path, "d", 5.0)
    at(ingest, clock, 10.5)
    assert offline(db_path) == ["d"]
    beat(ingest, "d")
    set_timeout(db_path, "d", None)
    at(ingest, clock, 13.5)
    assert offline(db_path) == ["d"]
