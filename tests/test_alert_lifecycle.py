"""The alert lifecycle in the ingest, in-process: bounds and flapping.

docs/events.md#rejections (`too_many_subsystems`), docs/events.md#flapping.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared import config as config_mod
from tests import test_ingest_inprocess as inprocess
from tests.conftest import write_config
from tests.support import FakeClock
from tests.test_ingest_inprocess import TIMEOUT, alerts, close, counters, device, events, heartbeat, message, types
from vesper_ingest.service import Ingest
from vesper_sim import broker as broker_mod

BOUND = 3
cfg = inprocess.cfg  # the in-process suite's fixtures: its config and its ingest builder
start = inprocess.start


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


# --- flapping (time passed in: transitions 6, window 600 s by default) -------------------------

WINDOW = 600.0


def flip(ingest: Ingest, clock: FakeClock, states: list[str], every_s: float = 10.0) -> None:
    """Each state as its own batch, every_s apart."""
    for state in states:
        clock.advance(every_s)
        ingest.process([alert(ingest, "Relay", state)])


def lifecycle_types(db_path: Path) -> list[str]:
    """The stored events other than liveness."""
    return [t for t in types(db_path) if not t.startswith("device_")]


@pytest.fixture
def live(start, clock: FakeClock) -> Ingest:
    """A connected ingest with the default flapping settings."""
    built = start()
    built.connected()
    return built


def test_sixth_change_in_the_window_is_one_alert_flapping_then_quiet(live: Ingest, clock: FakeClock, db_path: Path):
    """Five changes are announced, the sixth is alert_flapping, then nothing while the table stays true."""
    flip(live, clock, ["WARNING", "CLEARED"] * 2 + ["WARNING"])
    assert lifecycle_types(db_path) == ["alert", "alert_cleared", "alert", "alert_cleared", "alert"]
    flip(live, clock, ["CLEARED"])
    assert lifecycle_types(db_path)[-1] == "alert_flapping"
    assert events(db_path)[-1]["payload"] == {"subsystem": "Relay", "transitions": 6, "state": "CLEARED"}
    assert events(db_path)[-1]["severity"] == "warning"
    flip(live, clock, ["CRITICAL", "CLEARED"] * 10 + ["CRITICAL"])
    assert len(lifecycle_types(db_path)) == 6
    assert [(a["subsystem"], a["state"]) for a in alerts(db_path)] == [("Relay", "CRITICAL")]
    assert device(db_path)["health"] == "critical"


def test_flapping_ends_once_stable_for_the_window_with_the_current_state(live: Ingest, clock: FakeClock, db_path):
    """No end before the window has passed since the last change; then one alert_flapping_ended, state included."""
    flip(live, clock, ["WARNING", "CLEARED"] * 3 + ["FAILED"])
    last_change = clock.now
    live.sweep(last_change + WINDOW - 0.001)
    assert lifecycle_types(db_path)[-1] == "alert_flapping"
    live.sweep(last_change + WINDOW)
    live.sweep(last_change + WINDOW + 60)
    assert lifecycle_types(db_path)[-2:] == ["alert_flapping", "alert_flapping_ended"]
    assert events(db_path)[-1]["payload"] == {"subsystem": "Relay", "state": "FAILED", "changes": 1, "worst": "FAILED"}
    clock.now = last_change + WINDOW + 61
    flip(live, clock, ["CLEARED"])  # announced again: a fresh start
    assert lifecycle_types(db_path)[-1] == "alert_cleared"


def test_flapping_that_ends_cleared_says_cleared(live: Ingest, clock: FakeClock, db_path: Path) -> None:
    """The end names CLEARED when the subsystem holds no alert."""
    flip(live, clock, ["WARNING", "CLEARED"] * 4)
    live.sweep(clock.now + WINDOW)
    ended = {"subsystem": "Relay", "state": "CLEARED", "changes": 2, "worst": "WARNING"}  # 2 quiet changes, for history
    assert events(db_path)[-1]["payload"] == ended
    assert alerts(db_path) == []


def test_changes_spread_wider_than_the_window_never_flap(live: Ingest, clock: FakeClock, db_path: Path) -> None:
    """Six changes, but never six within 600 s: all announced."""
    flip(live, clock, ["WARNING", "CLEARED"] * 6, every_s=WINDOW / 5)
    assert "alert_flapping" not in lifecycle_types(db_path)
    assert len(lifecycle_types(db_path)) == 12


def test_message_only_changes_are_quiet_while_flapping(live: Ingest, clock: FakeClock, db_path: Path) -> None:
    """A new message with the same state is not a state change, and while flapping it is not announced."""
    flip(live, clock, ["WARNING", "CLEARED"] * 3)
    clock.advance(1)
    live.process([message(live, "bell-1", "alerts", b'{"subsystem":"Relay","state":"CLEARED"}')])
    live.process([message(live, "bell-1", "alerts", b'{"subsystem":"Relay","state":"WARNING","msg":"a"}')])
    live.process([message(live, "bell-1", "alerts", b'{"subsystem":"Relay","state":"WARNING","msg":"b"}')])
    assert lifecycle_types(db_path)[-1] == "alert_flapping"
    assert alerts(db_path)[0]["message"] == "b"


def test_flapping_survives_a_restart(start, clock: FakeClock, db_path: Path) -> None:
    """A restarted ingest still knows the subsystem flaps: quiet, then it ends on time."""
    first = start()
    first.connected()
    flip(first, clock, ["WARNING", "CLEARED"] * 3)
    close(first)
    again = start()
    again.connected()
    flip(again, clock, ["WARNING"])
    assert lifecycle_types(db_path)[-1] == "alert_flapping"
    again.sweep(clock.now + WINDOW)
    assert lifecycle_types(db_path)[-1] == "alert_flapping_ended"


def test_each_subsystem_flaps_on_its_own(live: Ingest, clock: FakeClock, db_path: Path) -> None:
    """Another subsystem of the same device is announced as usual while one flaps."""
    flip(live, clock, ["WARNING", "CLEARED"] * 3)
    live.process([alert(live, "Audio", "CRITICAL")])
    assert lifecycle_types(db_path)[-2:] == ["alert_flapping", "alert"]


def test_flap_transitions_zero_announces_every_change(tmp_path: Path, db_path: Path, clock: FakeClock) -> None:
    """alerts.flap_transitions = 0 turns detection off: twenty quick changes, twenty events."""
    toml = write_config(tmp_path / "vesper.toml", broker_mod.free_port(), db_path, alerts={"flap_transitions": 0})
    off = Ingest(config_mod.load(toml), clock=clock)
    off.connected()
    try:
        flip(off, clock, ["WARNING", "CLEARED"] * 10, every_s=1.0)
        assert lifecycle_types(db_path) == ["alert", "alert_cleared"] * 10
    finally:
        close(off)
