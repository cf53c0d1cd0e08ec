"""Table tests of the liveness rules (docs/events.md#liveness); time is passed in."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared import store
from shared.config import Config, LivenessConfig
from tests.support import FakeClock
from vesper_ingest import sweep
from vesper_ingest.clock import Every, Frame
from vesper_ingest.fleet import Fleet
from vesper_ingest.liveness import announces_online, sweep_cutoff

T = 90.0


def overdue(db: Path, last_seen: float | None, now: float, connected_since: float | None) -> bool:
    """Whether the sweep (sweep.overdue: the cutoff, then one UPDATE on the store) declares a device offline."""
    conn = store.open_store(db)
    try:
        with store.write(conn):
            store.ensure_device(conn, "d", 0.0)  # known from a retained heartbeat
            if last_seen is not None:
                store.mark_alive(conn, "d", last_seen)
            cfg = Config(liveness=LivenessConfig(heartbeat_timeout_s=T))
            gone = sweep.overdue(conn, Fleet(conn), cfg, connected_since, now)
    finally:
        conn.close()
    return [e.source_id for e in gone] == ["d"]


@pytest.mark.parametrize(
    ("last_seen", "now", "connected_since", "expected"),
    [
        (1000.0, 1089.0, 0.0, False),  # inside the timeout
        (1000.0, 1090.0, 0.0, True),  # exactly at the deadline
        (1000.0, 5000.0, 0.0, True),  # long silent
        (None, 1000.0, 0.0, True),  # known only from a retained heartbeat, never live
        (1000.0, 5000.0, None, False),  # disconnected from the broker: never declare anyone
        (1000.0, 5000.0, 4950.0, False),  # reconnected 50 s ago: grace
        (1000.0, 5040.0, 4950.0, True),  # grace over, still silent
        (None, 5000.0, 4950.0, False),  # grace covers never-live devices too
        (4990.0, 5040.0, 4950.0, False),  # spoke during the grace: its own timeout runs
        (4990.0, 5080.0, 4950.0, True),
    ],
)
def test_overdue(db_path: Path, last_seen, now, connected_since, expected):
    """The one rule, where it lives: the sweep's cutoff and its statement on a real store (both engines)."""
    assert overdue(db_path, last_seen, now, connected_since) is expected


def test_cutoff_is_none_in_grace_and_timeout_after():
    assert sweep_cutoff(100.0, T, 50.0) is None
    assert sweep_cutoff(140.0, T, 50.0) == 50.0
    assert sweep_cutoff(140.0, T, None) is None


@pytest.mark.parametrize(
    ("before", "announced"), [(None, False), ("unknown", False), ("online", False), ("offline", True)]
)
def test_only_offline_to_online_is_announced(before, announced):
    assert announces_online(before) is announced


# --- clock steps (SPEC §11): the rules see only differences of times, so a frame moved by a step decides alike -----


@pytest.mark.parametrize("step", [600.0, -600.0, 86400.0])
@pytest.mark.parametrize(
    ("last_seen", "now", "connected_since"),
    [(1000.0, 1089.0, 0.0), (1000.0, 1090.0, 0.0), (4990.0, 5040.0, 4950.0), (4990.0, 5080.0, 4950.0)],
)
def test_a_rebase_decides_alike(tmp_path: Path, last_seen, now, connected_since, step):
    """Shifting last_seen, now and connected_since by one step (the sweep's rebase) changes no decision."""
    moved = overdue(tmp_path / "moved.db", last_seen + step, now + step, connected_since + step)
    assert moved is overdue(tmp_path / "still.db", last_seen, now, connected_since)


def test_the_frame_holds_through_a_step_until_rebased():
    """now() runs on the monotonic clock; step() tells the wall clock's step; rebase() follows it."""
    wall, mono = FakeClock(1_700_000_000.0), FakeClock(50.0)
    frame = Frame(wall, mono)
    wall.advance(-600.0)
    mono.advance(2.0)
    wall.advance(2.0)
    assert frame() == 1_700_000_002.0  # the step moves nothing by itself
    assert frame.step() == pytest.approx(-600.0)
    frame.rebase(-600.0)
    assert frame() == wall() and frame.step() == 0.0


def test_slewing_never_rebases():
    """NTP slewing (500 ppm at most) over a day: the frame follows by a hair each sweep, never a step."""
    wall, mono = FakeClock(1_700_000_000.0), FakeClock(50.0)
    frame = Frame(wall, mono)
    for _ in range(86400):
        mono.advance(1.0)
        wall.advance(1.0005)
        assert frame.step() == 0.0
    assert frame() == pytest.approx(wall(), abs=0.001)


def test_every_runs_on_the_monotonic_clock():
    """The run loop's timers: due at once, then every interval of monotonic time (no wall clock to step)."""
    mono = FakeClock(50.0)
    sweeps = Every(1.0, mono)
    assert sweeps.due() and not sweeps.due()
    assert sweeps.wait(5.0) == 1.0 and sweeps.wait(0.25) == 0.25
    mono.advance(0.5)
    assert not sweeps.due() and sweeps.wait(5.0) == 0.5
    mono.advance(0.5)
    assert sweeps.due() and Every(60.0, mono, first_in_s=60.0).wait(100.0) == 60.0
