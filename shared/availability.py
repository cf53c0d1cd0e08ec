"""The one home of history's arithmetic (SPEC §13): intervals, a device's availability, day windows.

Pure: no I/O, no clock (time is passed in). An interval is [start, end) in epoch seconds; a list of them is
read as the union of its members. The store (shared/store/history.py) reads the rows and asks these rules; MTTA and
MTTR's medians are the store's (shared/store/medians.py: numpy's, over a month's ~1.8 million times).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

Interval = tuple[float, float]
UNDER = 0.99  # a group's `under_99` counts its devices whose ratio is below this


def union(intervals: Iterable[Interval]) -> list[Interval]:
    """The intervals merged: sorted, disjoint, none empty (touching ones joined)."""
    merged: list[Interval] = []
    for start, end in sorted(i for i in intervals if i[1] > i[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def clip(intervals: Iterable[Interval], start: float, end: float) -> list[Interval]:
    """The union of the intervals within [start, end)."""
    return union((max(s, start), min(e, end)) for s, e in intervals)


def measure(intervals: Iterable[Interval]) -> float:
    """The length of the union, in seconds."""
    return sum(e - s for s, e in union(intervals))


def subtract(intervals: Iterable[Interval], removed: Iterable[Interval]) -> list[Interval]:
    """The union of `intervals` less the union of `removed`."""
    out: list[Interval] = []
    cuts = union(removed)
    for start, end in union(intervals):
        at = start
        for cut_start, cut_end in cuts:
            if cut_end <= at or cut_start >= end:
                continue
            if cut_start > at:
                out.append((at, cut_start))
            at = max(at, cut_end)
        if at < end:
            out.append((at, end))
    return out


def overlap(intervals: Iterable[Interval], other: Iterable[Interval]) -> float:
    """The length of the intersection of two unions."""
    mine = union(intervals)
    return measure(mine) - measure(subtract(mine, other))


@dataclass(frozen=True)
class Availability:
    """A device's time in a window: down, counted (neither unknown nor silenced), unknown, silenced (seconds)."""

    down_s: float = 0.0
    counted_s: float = 0.0
    unknown_s: float = 0.0
    silenced_s: float = 0.0

    @property
    def ratio(self) -> float | None:
        """1 − down ÷ counted; None when no time counted."""
        return None if self.counted_s <= 0 else 1.0 - self.down_s / self.counted_s


def known_from(first_seen: float | None, history_since: float | None) -> float:
    """When history knows a device: from its first report, and not before history began (inf: never reported)."""
    if first_seen is None:
        return float("inf")
    return max(first_seen, history_since) if history_since is not None else first_seen


def unknown(window: Interval, blind: Iterable[Interval], known: float) -> list[Interval]:
    """The window's unknown time: the fleet's blind stretches and the time before the device was known."""
    start, end = window
    return clip([*blind, (start, min(known, end))], start, end)


def availability(
    window: Interval, outages: Iterable[Interval], blind: Iterable[Interval], silenced: Iterable[Interval], known: float
) -> Availability:
    """A device's availability over `window`: outages less the unknown and the silenced time, over what is left."""
    start, end = window
    dark = unknown(window, blind, known)
    quiet = subtract(clip(silenced, start, end), dark)
    excluded = union([*dark, *quiet])
    counted = subtract([window], excluded)
    return Availability(
        down_s=overlap(clip(outages, start, end), counted),
        counted_s=measure(counted),
        unknown_s=measure(dark),
        silenced_s=measure(quiet),
    )


def counted_s(window: Interval, fleet: Sequence[Interval], known: float) -> float:
    """The counted time of a device that no silence covered: the window from when it was known, less `fleet`.

    `fleet` is a union (union() of the blind stretches and the whole fleet's silences), already clipped.
    """
    start = max(window[0], known)
    if start >= window[1]:
        return 0.0
    return window[1] - start - sum(max(0.0, min(e, window[1]) - max(s, start)) for s, e in fleet)


@dataclass(frozen=True)
class Group:
    """A group's summary over its devices' ratios: their mean, how many had one, how many were under 99 %."""

    availability: float | None
    devices: int
    under_99: int


def group(ratios: Iterable[float | None], same: tuple[float | None, int] = (None, 0)) -> Group:
    """The mean of the ratios that exist (None: no time counted); `same`: (a ratio, how many more devices have it)."""
    known = [r for r in ratios if r is not None]
    ratio, count = same if same[0] is not None else (0.0, 0)
    devices = len(known) + count
    mean = (sum(known) + ratio * count) / devices if devices else None
    return Group(mean, devices, sum(1 for r in known if r < UNDER) + (count if ratio < UNDER else 0))


def day_windows(start: float, end: float, zone: str) -> list[tuple[str, Interval]]:
    """The days in `zone` that [start, end) touches, each as ("YYYY-MM-DD", its part of the window).

    A day runs from one local midnight to the next: 23 or 25 hours on the days the clocks change.
    """
    tz = ZoneInfo(zone)
    day = datetime.fromtimestamp(start, tz).date()
    out: list[tuple[str, Interval]] = []
    while (begins := midnight(day, tz)) < end:
        ends = midnight(day + timedelta(days=1), tz)
        out.append((day.isoformat(), (max(begins, start), min(ends, end))))
        day += timedelta(days=1)
    return out


def midnight(day: date, tz: ZoneInfo) -> float:
    """The first instant of a local day (a midnight skipped by a clock change: the first moment after it)."""
    local = datetime(day.year, day.month, day.day, tzinfo=tz)
    return local.timestamp()
