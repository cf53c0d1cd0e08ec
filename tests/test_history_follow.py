"""History's write side (SPEC §13, docs/history.md): events become episodes in their transaction; time is passed in.

A table test of the follower alone (vesper_ingest/history.py), then the ingest in-process on a real SQLite
file: an outage across a restart is one episode, a flapping stretch one incident, the first acknowledgement is
kept, a forgotten device's episodes end, the first start backfills and a start after a gap records it as blind.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shared import config as config_mod
from shared import store
from shared.config import HistoryConfig
from shared.events import NewEvent, iso
from shared.store import episodes
from tests import test_ingest_inprocess as inprocess
from tests.support import FakeClock
from tests.test_alert_lifecycle import alert, flip
from tests.test_ingest_inprocess import TIMEOUT, heartbeat, sweep_at
from vesper_ingest.history import History
from vesper_ingest.service import Ingest

T = 1_800_000_000.0
cfg = inprocess.cfg  # the in-process suite's fixtures: its config and its ingest builder
start = inprocess.start


def ev(kind: str, source: str = "bell-1", **payload: Any) -> NewEvent:
    """An event as the ingest decides it."""
    return NewEvent(kind, source, payload)


def shape(episode: episodes.Episode) -> tuple[Any, ...]:
    """What a row says: kind, subsystem, start and end (relative to T), worst, changes, who acknowledged."""
    ended = None if episode.ended is None else episode.ended - T
    return episode.kind, episode.subsystem, episode.started - T, ended, episode.worst, episode.changes, episode.ack_by


FOLLOWED = [
    pytest.param(
        [(0, ev("device_offline")), (60, ev("device_online"))],
        [("outage", "", 0, 60, "offline", 1, None)], id="an outage"),
    pytest.param(
        [(0, ev("alert", subsystem="Relay", state="WARNING")), (5, ev("alert", subsystem="Relay", state="FAILED")),
         (7, ev("alert", subsystem="Relay", state="CRITICAL")),
         (9, ev("alert_acknowledged", subsystem="Relay", by="ann")),
         (11, ev("alert_acknowledged", subsystem="Relay", by="bob")), (20, ev("alert_cleared", subsystem="Relay"))],
        [("incident", "Relay", 0, 20, "FAILED", 3, "ann")], id="an incident: worst state, first acknowledgement"),
    pytest.param(
        [(0, ev("alert", subsystem="Relay", state="WARNING")),
         (4, ev("alert_flapping", subsystem="Relay", transitions=6, state="CLEARED")),
         (90, ev("alert_flapping_ended", subsystem="Relay", state="CLEARED", changes=7))],
        [("incident", "Relay", 0, 90, "WARNING", 9, None)], id="flapping that began cleared: one incident"),
    pytest.param(
        [(4, ev("alert_flapping", subsystem="Audio", transitions=6, state="CRITICAL")),
         (90, ev("alert_flapping_ended", subsystem="Audio", state="WARNING", changes=2))],
        [("incident", "Audio", 4, None, "CRITICAL", 3, None)], id="flapping that began raised and ends raised"),
    pytest.param(
        [(0, ev("alert_cleared", subsystem="Relay")), (1, ev("device_online")),
         (2, ev("alert_acknowledged", subsystem="Relay", by="ann"))],
        [], id="ends and acknowledgements of nothing open: nothing"),
    pytest.param(
        [(40, ev("monitoring_interrupted", "vesper-ingest", since=iso(T + 10), reason="broker gone")),
         (70, ev("monitoring_resumed", "vesper-ingest", since=iso(T + 10), down_s=60))],
        [("blind", "", 10, 70, "blind", 1, None)], id="blind from its since"),
    pytest.param(
        [(0, ev("device_offline")), (1, ev("device_offline")), (2, ev("alert", subsystem="A", state="WARNING")),
         (3, ev("device_online")), (4, ev("device_offline"))],
        [("outage", "", 0, 3, "offline", 1, None), ("incident", "A", 2, None, "WARNING", 1, None),
         ("outage", "", 4, None, "offline", 1, None)], id="one open per key; a new one after the end"),
]  # fmt: skip


@pytest.mark.parametrize(("stream", "expected"), FOLLOWED)
def test_events_make_episodes(stream: list[tuple[float, NewEvent]], expected: list[tuple[Any, ...]]) -> None:
    """Each table row: the events in order, as one transaction's, and the episodes they leave."""
    history = History()
    history.follow((n, T + at, event) for n, (at, event) in enumerate(stream, 1))
    assert sorted(map(shape, history.touched.values()), key=lambda s: (s[2], s[0])) == expected


def rows(db_path: Path) -> list[tuple[Any, ...]]:
    """Every stored episode as shape() says it (T-relative), oldest first."""
    conn = store.connect(db_path, readonly=True)
    try:
        stored = episodes.load_all(conn)
    finally:
        conn.close()
    return [shape(e) for e in stored]


@pytest.fixture
def live(start: Callable[[], Ingest], clock: FakeClock) -> Ingest:
    """A connected in-process ingest, the clock at T."""
    clock.now = T
    built = start()
    built.connected()
    return built


def test_an_outage_across_a_restart_is_one_episode(
    live: Ingest, start: Callable[[], Ingest], clock: FakeClock, db_path: Path
) -> None:
    """Offline, the ingest restarts, back online: one outage, from the offline event to the online one."""
    live.process([heartbeat(live)])
    sweep_at(live, clock, T + TIMEOUT + 1)
    assert rows(db_path) == [("outage", "", TIMEOUT + 1, None, "offline", 1, None)]
    live.conn.close()
    clock.now = T + 20
    again = start()
    again.connected()
    clock.now = T + 30
    again.process([heartbeat(again)])
    assert rows(db_path) == [("outage", "", TIMEOUT + 1, 30, "offline", 1, None)]


def test_a_flapping_stretch_is_one_incident_with_its_changes(live: Ingest, clock: FakeClock, db_path: Path) -> None:
    """Five announced changes make five short episodes' worth; the sixth flaps: one incident to the end of flapping."""
    flip(live, clock, ["WARNING", "CLEARED"] * 3 + ["CRITICAL", "CLEARED"])  # the 6th change flaps; 2 quiet
    sweep_at(live, clock, clock.now + 10_000)  # stable for the window: flapping ends, cleared
    incidents = [r for r in rows(db_path) if r[0] == "incident"]
    assert [r[3] is not None for r in incidents] == [True, True, True]
    assert incidents[-1][4:6] == ("CRITICAL", 1 + 1 + 2)  # raised, the change that made it flap, two quiet
    assert incidents[-1][3] == clock.now - T


def test_a_forgotten_device_ends_its_open_episodes(live: Ingest, clock: FakeClock, db_path: Path) -> None:
    """DELETE of a device: its open incident ends at the sweep that carries it out; the episode stays."""
    live.process([alert(live, "Relay", "CRITICAL")])
    conn = store.connect(db_path)
    try:
        with store.write(conn):
            store.queue_command(conn, "forget", "bell-1", {}, T + 5)
    finally:
        conn.close()
    sweep_at(live, clock, T + 7)
    assert rows(db_path) == [("incident", "Relay", 0, 7, "CRITICAL", 1, None)]


def test_the_first_start_backfills_from_the_retained_events(
    cfg: config_mod.Config, start: Callable[[], Ingest], clock: FakeClock, db_path: Path
) -> None:
    """History turned on: the retained events replayed into episodes; a state no retained event opened is opened."""
    clock.now = T
    off = Ingest(config_mod.replace(cfg, history=HistoryConfig(retention_days=0)), clock=clock)
    off.connected()
    off.process([heartbeat(off), alert(off, "Audio", "FAILED")])
    clock.now = T + 5
    off.process([alert(off, "Relay", "WARNING")])
    clock.now = T + 8
    off.process([alert(off, "Relay", "CLEARED")])
    sweep_at(off, clock, T + TIMEOUT + 9)  # offline
    with off.writer.transaction() as conn:
        store.prune_events(conn, T + 1)  # Audio's raise is gone: only its active alert says it
    off.conn.close()
    assert rows(db_path) == []
    clock.now = T + 100
    start()
    assert rows(db_path) == [
        ("incident", "Relay", 5, 8, "WARNING", 1, None),
        ("outage", "", TIMEOUT + 9, None, "offline", 1, None),
        ("incident", "Audio", 5, None, "FAILED", 1, None),  # from the oldest retained event's time
        ("blind", "", TIMEOUT + 9, 100, "blind", 1, None),  # nobody watched since the last sweep
    ]


def test_a_start_long_after_the_last_sweep_records_the_gap_as_blind(
    live: Ingest, start: Callable[[], Ingest], clock: FakeClock, db_path: Path
) -> None:
    """No ingest watched between the last sweep and this start: a closed blind episode, the ingest's own."""
    sweep_at(live, clock, T + 1)
    live.conn.close()
    clock.now = T + 600
    again = start()
    blind = [r for r in rows(db_path) if r[0] == "blind"]
    assert blind == [("blind", "", 1, 600, "blind", 1, None)]
    assert episodes.history_since(again.conn) is not None
    state = json.loads(store.get_meta(again.conn, "ingest_state") or "{}")
    assert state["last_sweep_at"] == T + 1
