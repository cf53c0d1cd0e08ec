"""The alert lifecycle in the ingest (docs/events.md#alert-lifecycle): bounds and unconfirmed alerts, in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared import config as config_mod
from tests.conftest import write_config
from tests.support import FakeClock
from tests.test_ingest_inprocess import TIMEOUT, alerts, close, counters, device, heartbeat, message, types
from vesper_ingest.service import Ingest
from vesper_sim import broker as broker_mod

BOUND = 3


def alert(ingest: Ingest, subsystem: str, state: str = "WARNING", device_id: str = "bell-1") -> object:
    """An alert message of one subsystem."""
    return message(ingest, device_id, "alerts", json.dumps({"subsystem": subsystem, "state": state}).encode())


@pytest.fixture
def bounded(tmp_path: Path, db_path: Path, clock: FakeClock) -> Ingest:
    """A connected ingest allowing BOUND active alerts per device."""
    toml = write_config(
        tmp_path / "vesper.toml",
        broker_mod.free_port(),
        db_path,
        liveness={"heartbeat_timeout_s": TIMEOUT},
        alerts={"max_subsystems_per_device": BOUND},
    )
    built = Ingest(config_mod.load(toml), clock=clock)
    built.connected()
    yield built
    close(built)


def test_a_new_subsystem_past_the_bound_is_refused_and_counted(bounded: Ingest, db_path: Path) -> None:
    """The fourth subsystem is refused; the three held change state and clear; a cleared slot takes a new one."""
    bounded.process([alert(bounded, f"S{n}") for n in range(BOUND + 2)])
    assert sorted(a["subsystem"] for a in alerts(db_path)) == ["S0", "S1", "S2"]
    bounded.process([alert(bounded, "S0", "CRITICAL"), alert(bounded, "S9", "CLEARED")])
    assert device(db_path)["health"] == "critical"
    bounded.process([alert(bounded, "S1", "CLEARED"), alert(bounded, "S7")])
    assert sorted(a["subsystem"] for a in alerts(db_path)) == ["S0", "S2", "S7"]
    bounded.sweep(bounded.clock())  # the sweep saves the counters
    assert counters(db_path)["rejected.too_many_subsystems"] == 2
    assert types(db_path) == ["alert"] * 3 + ["alert"] + ["alert_cleared", "alert"]


def test_the_bound_is_per_device_and_survives_a_restart(bounded: Ingest, db_path: Path, clock: FakeClock) -> None:
    """Another device has its own room; a restarted ingest counts what the table holds."""
    bounded.process([alert(bounded, f"S{n}") for n in range(BOUND)] + [alert(bounded, "S0", device_id="bell-2")])
    again = Ingest(bounded.cfg, clock=clock)
    again.connected()
    try:
        again.process([alert(again, "S8"), alert(again, "S1", device_id="bell-2")])
        assert len(alerts(db_path)) == BOUND
        assert len(alerts(db_path, "bell-2")) == 2
    finally:
        close(again)


def test_storm_of_distinct_subsystems_holds_the_bound(bounded: Ingest, db_path: Path) -> None:
    """20,000 distinct subsystems from one device: BOUND active alerts and BOUND events, not 20,000."""
    bounded.process([alert(bounded, f"S{n}") for n in range(20_000)])
    assert len(alerts(db_path)) == BOUND
    assert len(types(db_path)) == BOUND
    assert device(db_path)["active_alerts"] == BOUND


def test_heartbeats_still_count_on_a_full_device(bounded: Ingest, db_path: Path) -> None:
    """A refused alert changes nothing else: the device's heartbeats keep it online."""
    bounded.process([heartbeat(bounded)] + [alert(bounded, f"S{n}") for n in range(BOUND + 1)])
    assert device(db_path)["liveness"] == "online"
