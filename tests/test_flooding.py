"""One device cannot flood the timeline (SPEC §16, docs/events.md#flooding): the pure limiter, the ingest in-process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared import config as config_mod
from shared import store
from shared.events import NewEvent
from shared.notify_config import NOTIFY_TYPES
from shared.vocabulary import severity_of
from tests.conftest import write_config
from tests.support import FakeClock
from vesper_ingest.flooding import Floods, ended, limited
from vesper_ingest.service import Inbound, Ingest
from vesper_sim import broker as broker_mod

T0 = 1_700_000_000.0


def NONE(device_id: str) -> dict[str, str]:  # noqa: N802 - a device with no active alert
    """No active alert."""
    return {}


def alerts(device: str, n: int, first: int = 0) -> list[NewEvent]:
    """`n` alert events of `device`, each of a new subsystem."""
    return [NewEvent("alert", device, {"subsystem": f"S{first + i}"}) for i in range(n)]


def test_up_to_the_limit_per_minute_passes_then_one_flooding_and_quiet() -> None:
    floods = Floods(limit=5)
    kept = limited(floods, alerts("a", 12), T0)
    assert [e.type for e in kept] == ["alert"] * 5 + ["device_flooding"]
    flooding = kept[-1]
    assert flooding.severity == "warning" and flooding.payload == {"limit": 5, "window_s": 60}
    assert floods.take_unreported() == 7 and floods.take_unreported() == 0
    assert limited(floods, alerts("a", 3), T0 + 30) == []  # still flooding: nothing, not a second device_flooding


def test_the_window_slides() -> None:
    """At most `limit` in any 60 s: an event leaves the window 60 s after it came."""
    floods = Floods(limit=3)
    for t in (0, 20, 40):
        assert limited(floods, alerts("a", 1), T0 + t)
    assert limited(floods, alerts("a", 1), T0 + 60) != []  # the one at 0 left the window
    assert [e.type for e in limited(floods, alerts("a", 1), T0 + 61)] == ["device_flooding"]


def test_liveness_is_never_held_back_and_other_devices_are_not_touched() -> None:
    floods = Floods(limit=2)
    limited(floods, alerts("a", 5), T0)
    liveness = [NewEvent("device_online", "a", {}), NewEvent("device_offline", "a", {})]
    assert limited(floods, liveness, T0) == liveness
    assert [e.source_id for e in limited(floods, alerts("b", 2), T0)] == ["b", "b"]


@pytest.mark.parametrize(
    ("later", "at", "over"),
    [(0, 59.9, False), (0, 60, True), (3, 60, True), (4, 60, False), (4, 89.9, False), (4, 90, True)],
)
def test_a_flood_ends_once_the_last_minute_held_at_most_the_limit(later: int, at: float, over: bool) -> None:
    """Four at T0 (the 4th starts the flood), `later` more at T0 + 30: over once the last minute held at most 3."""
    floods = Floods(limit=3)
    limited(floods, alerts("a", 4), T0)
    limited(floods, alerts("a", later), T0 + 30)
    done = ended(floods, T0 + at, lambda d: {"Audio": "CRITICAL"})
    if over:
        assert [(e.type, e.source_id, e.severity, e.payload) for e in done] == [
            ("device_flooding_ended", "a", "info", {"suppressed": 1 + later, "alerts": {"Audio": "CRITICAL"}})
        ]
        assert floods.dirty and "a" not in floods.flooding
    else:
        assert done == [] and "a" in floods.flooding


def test_a_flood_at_a_steady_rate_over_the_limit_goes_on() -> None:
    floods = Floods(limit=2)
    for second in range(0, 300, 10):  # 6 a minute
        limited(floods, alerts("a", 1), T0 + second)
        assert ended(floods, T0 + second, NONE) == []
    assert [e.payload["suppressed"] for e in ended(floods, T0 + 290 + 60, NONE)] == [28]


def test_the_floods_survive_a_reload_and_a_rebase() -> None:
    """What is written to meta is read back (a rollback, a restart, a standby taking over); shift moves the minute."""
    floods = Floods(limit=2)
    limited(floods, alerts("a", 4), T0)
    assert floods.dirty
    again = Floods(limit=2, saved=floods.take_saved())
    assert not floods.dirty and limited(again, alerts("a", 1), T0 + 1) == []  # no second device_flooding
    again.shift(-30.0)  # read back as if its last three came at its latest (T0), then moved back 30 s
    assert again.dirty and list(again.flooding["a"].times) == [T0 - 30, T0 - 30, T0 - 29]
    assert ended(again, T0 + 29.9, NONE) == []
    assert [e.payload["suppressed"] for e in ended(again, T0 + 30, NONE)] == [3]
    assert Floods(limit=2, saved="not json").flooding == {} and Floods(2, saved='{"a": [1]}').flooding == {}


def test_a_forgotten_device_starts_afresh() -> None:
    floods = Floods(limit=1)
    limited(floods, alerts("a", 3), T0)
    floods.forget("a")
    assert floods.dirty and [e.type for e in limited(floods, alerts("a", 1), T0)] == ["alert"]


def test_idle_windows_are_dropped() -> None:
    floods = Floods(limit=10)
    limited(floods, alerts("a", 1) + alerts("b", 1), T0)
    floods.settle(T0 + 30)
    limited(floods, alerts("b", 1), T0 + 50)
    floods.settle(T0 + 95)
    assert set(floods.recent) == {"b"}


def test_the_new_types_are_known() -> None:
    assert severity_of("device_flooding") == "warning" and severity_of("device_flooding_ended") == "info"
    assert {"device_flooding", "device_flooding_ended"} <= set(NOTIFY_TYPES)


# --- the ingest in-process: a fake clock, a real SQLite file, no broker -------------------------------------------


@pytest.fixture
def ingest(tmp_path: Path, db_path: Path, clock: FakeClock) -> Iterator[Ingest]:
    """An Ingest with a limit of 10 events a minute, on the test's database and fake clock."""
    toml = write_config(
        tmp_path / "vesper.toml", broker_mod.free_port(), db_path, alerts={"max_events_per_device_per_minute": 10}
    )
    built = Ingest(config_mod.load(toml), clock=clock)
    built.connected()
    yield built
    built.conn.close()


def alert(ingest: Ingest, device: str, subsystem: str, state: str, mid: int) -> Inbound:
    payload = json.dumps({"subsystem": subsystem, "state": state}).encode()
    return Inbound(f"vesper/{device}/status/alerts", payload, False, mid, 1, ingest.generation)


def stored(db: Path, device: str | None = None) -> list[dict[str, Any]]:
    conn = store.connect(db, readonly=True)
    try:
        return store.events_after(conn, 0, limit=100_000, device=device)
    finally:
        conn.close()


def test_a_flood_is_one_event_the_state_stays_true_and_a_quiet_minute_ends_it(
    ingest: Ingest, clock: FakeClock, db_path: Path
) -> None:
    """30 raise+clear pairs: 10 events and one device_flooding; the alerts as left; ended after a quiet minute."""
    flood = [
        alert(ingest, "noisy", f"S{i}", state, 2 * i + j)
        for i in range(30)
        for j, state in enumerate(["FAILED", "CLEARED"])
    ]
    ingest.process(flood[:25])
    ingest.process([alert(ingest, "calm", f"C{i}", "WARNING", 1000 + i) for i in range(5)])
    ingest.process(flood[25:] + [alert(ingest, "noisy", "Last", "CRITICAL", 999)])
    types = [e["type"] for e in stored(db_path, "noisy")]
    assert types == ["alert", "alert_cleared"] * 5 + ["device_flooding"]
    assert [e["type"] for e in stored(db_path, "calm")] == ["alert"] * 5  # another device is not held back
    conn = store.connect(db_path, readonly=True)
    try:
        assert [(a["subsystem"], a["state"]) for a in store.alerts(conn, "noisy")] == [("Last", "CRITICAL")]
        assert store.device(conn, "noisy")["liveness"] == "online"
    finally:
        conn.close()

    for _ in range(59):  # the sweep each second: still flooding within the minute after the last would-be event
        ingest.sweep(clock.advance(1.0))
    assert [e["type"] for e in stored(db_path, "noisy")][-1] == "device_flooding"
    ingest.sweep(clock.advance(1.0))
    last = stored(db_path, "noisy")[-1]
    assert last["type"] == "device_flooding_ended" and last["severity"] == "info"
    assert last["payload"] == {"suppressed": 61 - 10, "alerts": {"Last": "CRITICAL"}}  # its first is the flooding
    assert store.counters(ingest.conn)["alerts.flood_suppressed"] == 51

    ingest.process([alert(ingest, "noisy", "Last", "CLEARED", 2000)])  # announced again
    assert stored(db_path, "noisy")[-1]["type"] == "alert_cleared"


def test_a_restart_keeps_a_flood(tmp_path: Path, ingest: Ingest, clock: FakeClock, db_path: Path) -> None:
    """A flood written with its batch is read back by the next ingest (a restart, a standby taking over)."""
    ingest.process([alert(ingest, "noisy", f"S{i}", "WARNING", i) for i in range(15)])
    ingest.conn.close()
    again = Ingest(ingest.cfg, clock=clock)
    try:
        again.connected()
        clock.advance(10.0)
        again.process([alert(again, "noisy", "T", "WARNING", 100)])
        again.sweep(clock.advance(49.0))  # a minute after the flood's latest would-be event written before
        assert stored(db_path, "noisy")[-1]["type"] == "device_flooding"
        again.sweep(clock.advance(1.0))
    finally:
        again.conn.close()
    types = [e["type"] for e in stored(db_path, "noisy")]
    assert types == ["alert"] * 10 + ["device_flooding", "device_flooding_ended"]
    assert stored(db_path, "noisy")[-1]["payload"]["suppressed"] == 6
