"""History's arithmetic (SPEC §13), pure: intervals, a device's availability, day windows in a zone.

Time is passed in; each rule is a table. The store's reads over real databases: tests/test_history_store.py.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from shared import availability as av

H = 3600.0


@pytest.mark.parametrize(
    ("intervals", "merged"),
    [
        ([], []),
        ([(5, 5)], []),
        ([(0, 10), (5, 15)], [(0, 15)]),
        ([(0, 10), (10, 15)], [(0, 15)]),  # touching joins
        ([(20, 30), (0, 10)], [(0, 10), (20, 30)]),
        ([(0, 30), (5, 10)], [(0, 30)]),
    ],
)
def test_union(intervals: list[av.Interval], merged: list[av.Interval]) -> None:
    assert av.union(intervals) == merged


@pytest.mark.parametrize(
    ("intervals", "removed", "left"),
    [
        ([(0, 100)], [], [(0, 100)]),
        ([(0, 100)], [(10, 20), (30, 40)], [(0, 10), (20, 30), (40, 100)]),
        ([(0, 100)], [(-5, 200)], []),
        ([(0, 10), (20, 30)], [(5, 25)], [(0, 5), (25, 30)]),
        ([(0, 10)], [(10, 20)], [(0, 10)]),
    ],
)
def test_subtract(intervals: list[av.Interval], removed: list[av.Interval], left: list[av.Interval]) -> None:
    assert av.subtract(intervals, removed) == left
    assert av.overlap(intervals, removed) == av.measure(intervals) - av.measure(left)


def test_clip_and_measure() -> None:
    assert av.clip([(-10, 5), (8, 50), (60, 70)], 0, 55) == [(0, 5), (8, 50)]
    assert av.measure([(0, 10), (5, 15), (20, 21)]) == 16


W = (0.0, 100 * H)  # a window of 100 hours
# (outages, blind, silenced, known) -> (down, counted, unknown, silenced), hours
CASES = {
    "no outage": ([], [], [], 0.0, (0, 100, 0, 0)),
    "one outage": ([(10, 20)], [], [], 0.0, (10, 100, 0, 0)),
    "an outage across the window's start": ([(-50, 5)], [], [], -1e9, (5, 100, 0, 0)),
    "an open outage across its end": ([(90, 1000)], [], [], 0.0, (10, 100, 0, 0)),
    "overlapping silences count once": ([(10, 30)], [], [(5, 15), (12, 25)], 0.0, (5, 80, 0, 20)),
    "blind is unknown, not down": ([(10, 30)], [(20, 40)], [], 0.0, (10, 80, 20, 0)),
    "blind and a silence overlapping": ([], [(10, 30)], [(20, 50)], 0.0, (0, 60, 20, 20)),
    "known mid-window": ([(40, 60)], [], [], 50.0, (10, 50, 50, 0)),
    "never known": ([(40, 60)], [], [], float("inf"), (0, 0, 100, 0)),
    "a silence past the window": ([], [], [(90, 200)], 0.0, (0, 90, 0, 10)),
}


@pytest.mark.parametrize(("outages", "blind", "silenced", "known", "expected"), CASES.values(), ids=CASES.keys())
def test_availability(
    outages: list[av.Interval], blind: list[av.Interval], silenced: list[av.Interval], known: float,
    expected: tuple[float, float, float, float],
) -> None:  # fmt: skip
    hours = lambda spans: [(s * H, e * H) for s, e in spans]  # noqa: E731
    result = av.availability(W, hours(outages), hours(blind), hours(silenced), known * H)
    down, counted, unknown, silenced_h = expected
    assert (result.down_s, result.counted_s, result.unknown_s, result.silenced_s) == (
        down * H, counted * H, unknown * H, silenced_h * H
    )  # fmt: skip
    assert result.unknown_s + result.silenced_s + result.counted_s == W[1] - W[0]
    assert result.ratio == (None if counted == 0 else 1 - down / counted)


@pytest.mark.parametrize(
    ("known", "fleet", "expected"),
    [(0.0, [], 100), (50.0, [], 50), (0.0, [(10, 20), (60, 70)], 80), (65.0, [(10, 20), (60, 70)], 30), (200.0, [], 0)],
)
def test_counted_time_of_a_device_no_silence_covered(known: float, fleet: list[av.Interval], expected: float) -> None:
    """The bulk path's counted time equals the rule's for a device without silences of its own."""
    fleet_s = [(s * H, e * H) for s, e in fleet]
    assert av.counted_s(W, fleet_s, known * H) == expected * H
    assert av.availability(W, [], fleet_s, [], known * H).counted_s == expected * H


def at(text: str, zone: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp()


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [
        ("Europe/Berlin", "2026-03-29", 23),  # clocks forward
        ("Europe/Berlin", "2026-10-25", 25),  # clocks back
        ("Europe/Berlin", "2026-06-01", 24),
        ("UTC", "2026-03-29", 24),
        ("America/New_York", "2026-03-08", 23),
    ],
)
def test_a_day_in_its_zone(zone: str, day: str, hours: int) -> None:
    begins = at(f"{day}T00:00:00", zone)
    days = av.day_windows(begins, begins + 30 * H, zone)
    assert days[0] == (day, (begins, begins + hours * H))
    assert days[1][1][0] == begins + hours * H  # the next day starts at the next local midnight


def test_day_windows_clip_to_the_window() -> None:
    start = at("2026-03-28T12:00:00", "Europe/Berlin")
    days = av.day_windows(start, start + 36 * H, "Europe/Berlin")
    assert [label for label, _ in days] == ["2026-03-28", "2026-03-29", "2026-03-30"]
    assert days[0][1] == (start, at("2026-03-29T00:00:00", "Europe/Berlin"))
    assert days[-1][1][1] == start + 36 * H
    assert sum(e - s for _, (s, e) in days) == 36 * H


def test_group_mean_leaves_out_devices_without_a_ratio() -> None:
    assert av.group([1.0, 0.98, None, 0.5]) == av.Group(pytest.approx((1.0 + 0.98 + 0.5) / 3), 3, 2)
    assert av.group([None]) == av.Group(None, 0, 0)


def test_known_from() -> None:
    assert av.known_from(None, 10.0) == float("inf")
    assert av.known_from(5.0, 10.0) == 10.0
    assert av.known_from(15.0, 10.0) == 15.0
    assert av.known_from(15.0, None) == 15.0
