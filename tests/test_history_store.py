"""History's reads (SPEC §13) over a real database: a device's history, the incident list, the reports.

Episodes, devices, the registry and silences are written as the ingest and the web write them; each read
takes `now`. Runs on SQLite and (VESPER_TEST_DATABASE=postgresql) PostgreSQL. The report's per-device
sums (SQL) are checked against a device's history (shared/availability.py's rules, row by row).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from shared import store
from shared.events import iso
from shared.silences import Silence
from shared.store import episodes
from shared.store.episodes import Episode
from shared.store.history import availability_report, device_history, incidents, problems
from tests import test_history_follow as follow
from tests import test_ingest_inprocess as inprocess
from tests.support import FakeClock
from tests.test_ingest_inprocess import TIMEOUT, heartbeat, sweep_at
from vesper_ingest.service import Ingest

H = 3600.0
DAY = 24 * H
BERLIN = "Europe/Berlin"
T0 = datetime(2026, 3, 27, tzinfo=ZoneInfo(BERLIN)).timestamp()  # local midnight, two days before clocks go forward
NOW = T0 + 10 * DAY
cfg, start, live = inprocess.cfg, inprocess.start, follow.live


@pytest.fixture
def db(db_path: Path) -> Iterator[store.Connection]:
    conn = store.open_store(db_path)
    yield conn
    conn.close()


def add_device(conn: store.Connection, device_id: str, first_seen: float | None, site: str | None = None,
               tags: tuple[str, ...] = (), name: str | None = None) -> None:  # fmt: skip
    with store.write(conn):
        conn.execute("INSERT INTO devices (id, first_seen) VALUES (?, ?)", (device_id, first_seen))
        if site is not None or tags or name is not None:
            conn.execute(
                "INSERT INTO registry (device_id, name, site, tags, updated_at) VALUES (?, ?, ?, ?, 0)",
                (device_id, name, site, json.dumps(list(tags))),
            )
            for tag in tags:
                conn.execute("INSERT INTO device_tags (tag, device_id) VALUES (?, ?)", (tag, device_id))


def add(conn: store.Connection, kind: str, device_id: str, started: float, ended: float | None,
        subsystem: str = "", worst: str = "offline", ack_at: float | None = None) -> None:  # fmt: skip
    with store.write(conn):
        episodes.write(conn, [Episode(kind, device_id, subsystem, started, worst, ended=ended, ack_at=ack_at,
                                      ack_by=None if ack_at is None else "op")])  # fmt: skip


def silence(conn: store.Connection, starts: float, ends: float, **match: Any) -> None:
    fields = {"device_id": None, "tag": None, "subsystem": None} | match
    with store.write(conn):
        store.add_silence(conn, Silence(0, starts_at=starts, ends_at=ends, created_by="op", **fields))


def since(conn: store.Connection, at: float) -> None:
    with store.write(conn):
        store.set_meta(conn, "history_since", repr(at))


@pytest.fixture
def fleet(db: store.Connection) -> store.Connection:
    """Five devices over ten days, each showing one rule; history since T0."""
    since(db, T0)
    add_device(db, "edge", T0 - DAY, site="north", tags=("lobby",), name="Edge")
    add(db, "outage", "edge", T0 - 2 * H, T0 + 3 * H)  # across the window's start: 3 h inside
    add(db, "outage", "edge", NOW - H, None)  # open: down until now
    add_device(db, "quiet", T0 - DAY, site="north", tags=("lobby", "roof"))
    add(db, "outage", "quiet", T0 + DAY, T0 + DAY + 10 * H)
    silence(db, T0 + DAY + 2 * H, T0 + DAY + 6 * H, device_id="quiet")
    silence(db, T0 + DAY + 4 * H, T0 + DAY + 8 * H, tag="roof")  # overlaps the first: 6 h silenced in all
    add_device(db, "late", T0 + 5 * DAY, site="south")  # first reported mid-window
    add(db, "outage", "late", T0 + 6 * DAY, T0 + 6 * DAY + 12 * H)
    add_device(db, "never", None, site="south")  # registered, never reported: no ratio
    add_device(db, "steady", T0 - DAY)
    add(db, "blind", "ingest-1", T0 + 2 * DAY, T0 + 2 * DAY + 12 * H, worst="blind")
    add(db, "outage", "steady", T0 + 2 * DAY + 6 * H, T0 + 2 * DAY + 18 * H)  # half of it blind
    return db


def test_a_device_history_follows_the_rules(fleet: store.Connection) -> None:
    quiet = device_history(fleet, "quiet", T0, NOW + DAY, NOW)
    assert quiet is not None
    assert quiet["availability"] | {"ratio": None} == {
        "ratio": None, "down_s": 4 * H, "counted_s": 10 * DAY - 12 * H - 6 * H, "unknown_s": 12 * H,
        "silenced_s": 6 * H, "outages": 1, "incidents": 0,
    }  # fmt: skip
    assert quiet["to"] == iso(NOW)
    assert [e["silenced"] for e in quiet["episodes"]] == [True]
    late = device_history(fleet, "late", T0, NOW, NOW)
    assert late is not None
    assert late["availability"]["unknown_s"] == 5 * DAY  # before it was known (the blind stretch is earlier)
    assert late["availability"]["ratio"] == pytest.approx(1 - 12 * H / (5 * DAY))
    steady = device_history(fleet, "steady", T0, NOW, NOW)
    assert steady is not None
    assert steady["availability"]["down_s"] == 6 * H  # the half inside the blind stretch is unknown, not down
    assert device_history(fleet, "nobody", T0, NOW, NOW) is None
    never = device_history(fleet, "never", T0, NOW, NOW)
    assert never is not None and never["availability"]["ratio"] is None and never["periods"]["24h"] is None


def test_an_outage_across_the_window_edges(fleet: store.Connection) -> None:
    edge = device_history(fleet, "edge", T0, NOW, NOW)
    assert edge is not None
    assert edge["availability"]["down_s"] == 3 * H + H
    assert [e["ended"] for e in edge["episodes"]] == [None, iso(T0 + 3 * H)]  # newest first
    assert edge["episodes"][0]["duration_s"] == H
    assert edge["periods"]["24h"] == pytest.approx(1 - H / DAY)


def test_the_report_by_device_agrees_with_each_device_history(fleet: store.Connection) -> None:
    """The SQL sums and the row-by-row rule give the same figures, device by device."""
    report = availability_report(fleet, T0, NOW, NOW, "device", BERLIN)
    rows = {r["group"]: r for r in report["rows"]}
    assert set(rows) == {"edge", "quiet", "late", "never", "steady"}
    for device_id, row in rows.items():
        one = device_history(fleet, device_id, T0, NOW, NOW)
        assert one is not None
        assert row["availability"] == pytest.approx(one["availability"]["ratio"]), device_id
        assert row["down_s"] == pytest.approx(one["availability"]["down_s"]), device_id
        assert row["outages"] == one["availability"]["outages"], device_id
    assert rows["edge"]["name"] == "Edge" and rows["edge"]["site"] == "north"
    assert rows["never"]["devices"] == 0 and rows["never"]["availability"] is None
    assert report["fleet"]["devices"] == 4


def test_the_report_by_site_and_tag(fleet: store.Connection) -> None:
    by_site = availability_report(fleet, T0, NOW, NOW, "site", BERLIN)
    sites = {r["group"]: r for r in by_site["rows"]}
    assert set(sites) == {"north", "south", None}
    assert sites["north"]["devices"] == 2 and sites["south"]["devices"] == 1  # "never" has no ratio
    by_tag = availability_report(fleet, T0, NOW, NOW, "tag", BERLIN)
    tags = {r["group"]: r["devices"] for r in by_tag["rows"]}
    assert tags == {"lobby": 2, "roof": 1, None: 2}
    assert by_site["fleet"] == by_tag["fleet"]


def test_days_in_the_zone_are_23_and_25_hours(db: store.Connection) -> None:
    """A device down one hour each day: 1/23 on the day the clocks go forward."""
    since(db, T0 - 400 * DAY)
    add_device(db, "bell", T0 - 400 * DAY)
    spring = datetime(2026, 3, 29, tzinfo=ZoneInfo(BERLIN)).timestamp()
    autumn = datetime(2026, 10, 25, tzinfo=ZoneInfo(BERLIN)).timestamp()
    for day in (spring - DAY, spring, autumn):
        add(db, "outage", "bell", day + 12 * H, day + 13 * H)
    report = availability_report(db, spring - DAY, spring + 2 * DAY - H, NOW + 400 * DAY, "day", BERLIN)
    assert [(r["group"], r["outages"]) for r in report["rows"]] == [
        ("2026-03-28", 1), ("2026-03-29", 1), ("2026-03-30", 0)
    ]  # fmt: skip
    assert report["rows"][1]["availability"] == pytest.approx(1 - 1 / 23)
    assert report["rows"][0]["availability"] == pytest.approx(1 - 1 / 24)
    autumn_day = availability_report(db, autumn, autumn + 25 * H, NOW + 400 * DAY, "day", BERLIN)
    assert [r["group"] for r in autumn_day["rows"]] == ["2026-10-25"]
    assert autumn_day["rows"][0]["availability"] == pytest.approx(1 - 1 / 25)


def test_mtta_and_mttr_are_medians(db: store.Connection) -> None:
    since(db, T0 - DAY)
    for n, site in enumerate(("a", "a", "b")):
        add_device(db, f"d{n}", T0 - DAY, site=site)
    add(db, "incident", "d0", T0 + H, T0 + 2 * H, "Audio", "CRITICAL", ack_at=T0 + H + 60)
    add(db, "incident", "d0", T0 + 3 * H, T0 + 3 * H + 600, "Audio", "WARNING", ack_at=T0 + 3 * H + 300)
    add(db, "incident", "d1", T0 + 4 * H, None, "Power", "FAILED", ack_at=T0 + 4 * H + 120)  # open: no MTTR
    add(db, "outage", "d2", T0 + 5 * H, T0 + 5 * H + 30)
    add(db, "outage", "d2", T0 - H, T0 + 2 * H)  # started before the window: in neither median
    report = availability_report(db, T0, T0 + DAY, T0 + DAY, "site", "UTC")
    sites = {r["group"]: r for r in report["rows"]}
    assert (sites["a"]["mtta_s"], sites["a"]["mttr_s"]) == (120.0, (H + 600) / 2)
    assert (sites["b"]["mtta_s"], sites["b"]["mttr_s"]) == (None, 30.0)
    assert (report["fleet"]["mtta_s"], report["fleet"]["mttr_s"]) == (120.0, 600.0)



def test_a_moment_long_outage_at_the_window_start_counts_in_mttr(db: store.Connection) -> None:
    since(db, T0 - DAY)
    add_device(db, "d0", T0 - DAY, site="a")
    add(db, "outage", "d0", T0, T0)  # started (and ended) at the window's first instant: its time to end is 0
    add(db, "outage", "d0", T0 - H, T0)  # ended as the window begins: not in it
    add(db, "incident", "d0", T0 + H, T0 + H + 90, "Audio", "WARNING")
    report = availability_report(db, T0, T0 + DAY, T0 + DAY, "site", "UTC")
    assert report["rows"][0]["mttr_s"] == 45.0  # the median of 0 and 90
    assert (report["rows"][0]["outages"], report["rows"][0]["down_s"]) == (0, 0.0)

@pytest.fixture
def listed(db: store.Connection) -> store.Connection:
    since(db, T0 - DAY)
    add_device(db, "a1", T0, site="a", tags=("x",))
    add_device(db, "b1", T0, site="b")
    for n in range(7):
        add(db, "incident", "a1", T0 + n * H, T0 + n * H + 60, f"S{n % 2}", ("WARNING", "CRITICAL")[n % 2])
        add(db, "outage", "b1", T0 + n * H, None if n == 6 else T0 + n * H + 30)
    add(db, "blind", "ingest-1", T0 + 20 * H, T0 + 21 * H, worst="blind")
    silence(db, T0, T0 + 90, subsystem="S0", device_id="a1")
    return db


def page_all(conn: store.Connection, limit: int, **filters: Any) -> list[int]:
    ids, cursor, pages = [], None, 0
    while True:
        rows, cursor = incidents(conn, T0, NOW, NOW, limit=limit, cursor=cursor, **filters)
        ids += [r["id"] for r in rows]
        pages += 1
        if cursor is None:
            return ids
        assert pages < 50


@pytest.mark.parametrize(
    ("filters", "count"),
    [
        ({}, 14), ({"device": "a1"}, 7), ({"site": "b"}, 7), ({"tag": "x"}, 7), ({"subsystem": "S1"}, 3),
        ({"state": "CRITICAL"}, 3), ({"open": True}, 1), ({"open": False}, 13), ({"kind": "blind"}, 1),
        ({"kind": "outage", "open": False}, 6),
    ],
)
def test_incidents_page_without_gaps_or_repeats(listed: store.Connection, filters: dict, count: int) -> None:
    every = page_all(listed, 1000, **filters)
    assert len(every) == count and every == sorted(every, reverse=True)
    for limit in (1, 3):
        assert page_all(listed, limit, **filters) == every


def test_incidents_say_silenced_and_take_only_their_window(listed: store.Connection) -> None:
    rows, _ = incidents(listed, T0, NOW, NOW, device="a1", subsystem="S0")
    assert [r["silenced"] for r in rows] == [False, False, False, True]  # only the first overlapped the silence
    late, _ = incidents(listed, T0 + 5 * H + 100, NOW, NOW)
    assert [(r["device_id"], r["started"]) for r in late] == [("b1", iso(T0 + 6 * H)), ("a1", iso(T0 + 6 * H))]
    with pytest.raises(ValueError):
        incidents(listed, T0, NOW, NOW, cursor="x")


def test_problems_rank_by_incidents_then_time(listed: store.Connection) -> None:
    add(listed, "incident", "b1", T0, T0 + 2 * H, "S1", "FAILED")
    add(listed, "incident", "b1", T0 + H, T0 + 3 * H, "S0", "WARNING")  # overlaps the first: 3 h of problem
    found = problems(listed, T0, T0 + DAY, T0 + DAY, limit=5)
    assert [(s["subsystem"], s["incidents"], s["devices"]) for s in found["subsystems"]] == [
        ("S0", 5, 2), ("S1", 4, 2)
    ]  # fmt: skip
    devices = {d["device_id"]: d for d in found["devices"]}
    assert [d["device_id"] for d in found["devices"]] == ["a1", "b1"]
    assert devices["b1"]["incidents"] == 2 and devices["b1"]["outages"] == 7
    # b1: its two incidents (0-3 h, overlapping) hold its first three outages; then three of 30 s, the last open
    assert devices["b1"]["problem_s"] == pytest.approx(3 * H + 3 * 30 + (DAY - 6 * H))
    for limit in (1, 2):  # fewer than the devices with incidents: only those that can rank have their time summed
        assert problems(listed, T0, T0 + DAY, T0 + DAY, limit=limit)["devices"] == found["devices"][:limit]


def test_an_outage_across_an_ingest_restart_is_one_episode_and_counts_once(
    live: Ingest, start: Callable[[], Ingest], clock: FakeClock, db_path: Path
) -> None:
    """Offline, the ingest restarts, back online: one outage; the device is down for all of it."""
    t = clock.now
    live.process([heartbeat(live)])
    sweep_at(live, clock, t + TIMEOUT + 1)
    live.conn.close()
    clock.now = t + 20
    again = start()
    again.connected()
    clock.now = t + 60
    again.process([heartbeat(again)])
    conn = store.connect(db_path, readonly=True)
    try:
        history = device_history(conn, "bell-1", t - 100, t + 100, t + 100)
    finally:
        conn.close()
    assert history is not None
    outages = [e for e in history["episodes"] if e["kind"] == "outage"]
    assert len(outages) == 1 and outages[0]["duration_s"] == pytest.approx(60 - TIMEOUT - 1)
    assert history["availability"]["down_s"] == pytest.approx(60 - TIMEOUT - 1)
    assert history["availability"]["outages"] == 1
