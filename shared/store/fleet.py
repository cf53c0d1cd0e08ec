"""Availability of every device over a window at fleet size (§13) (MTTA and MTTR: medians.py).

Each device's time down is summed by the database over the outages overlapping the window (one index range per
span bracket, overlapping_sql), clipped to when the device was known; the same sum over each of the fleet's few
blind stretches is taken off; the same read joins their times to end (for MTTR). Only the devices a maintenance
window may cover are read row by row and computed by shared/availability.py's rules, which are the definition the
sums agree with.
"""

from __future__ import annotations

import bisect
import itertools
import math
import operator
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from shared import availability as av
from shared.silences import Silence
from shared.store import scope
from shared.store.dialect import Connection
from shared.store.episodes import history_since, overlapping_sql
from shared.store.history_rows import Silences, blind, chunks, registry, scoped
from shared.store.medians import TO_END, Joined, joined, joined_ms, ms

_HI = "CASE WHEN COALESCE(e.ended, ?3) < ?3 THEN COALESCE(e.ended, ?3) ELSE ?3 END"
_LO = "CASE WHEN e.started > ?4 THEN e.started ELSE ?4 END"
# Per device: its outages overlapping [?2, ?3) after ?4 (when history began, if later), their time, and the times
# to end of those started in the window ({ended}: medians.py). Devices known later than ?4 are computed row by row
# (_exact): no join with devices on every row. {scope}: only a site-limited caller's devices (§14, from ?5), or all.
_COUNTED = f"({_HI}) > ({_LO})"
_COLUMNS = f"e.device_id, e.started, e.ended, {ms(TO_END[0], f'e.started >= ?2 AND {TO_END[1]}', 'ended_ms')}"
_DOWN = (
    f"SELECT e.device_id, SUM(CASE WHEN {_COUNTED} THEN 1 ELSE 0 END),"
    f" SUM(CASE WHEN {_COUNTED} THEN ({_HI}) - ({_LO}) ELSE 0 END), {{ended}}"
    f" FROM ({overlapping_sql(_COLUMNS, touching=True)}) AS e{{scope}} GROUP BY e.device_id"
)

# A few devices' outages overlapping [?2, ?3): the window's index ranges filtered (by ?4 …), not each device's
# whole history by episodes_device with a table lookup per row (at 100,000 devices x 400 days: 1.1 s -> 0.1 s).
_OUTAGES = f"SELECT e.device_id, e.started, e.ended FROM ({overlapping_sql('e.device_id, e.started, e.ended')}) AS e"


@dataclass
class Fleet:
    """The devices a report reads (each with when it first reported) and what they share over its window."""

    first_seen: dict[str, float | None]
    names: dict[str, str | None]
    sites: dict[str, str | None]
    tags: dict[str, list[str]]
    since: float | None
    blind: list[av.Interval]
    silences: Silences
    limited: tuple[str, ...] | None = None  # a site-limited caller's sites (§14): only their devices; None: all
    known: dict[str, float] = field(default_factory=dict)  # when history knows each device (inf: never)
    known_times: list[float] = field(default_factory=list)  # every device's `known`, earliest first
    known_ids: list[str] = field(default_factory=list)  # the devices in that order

    def __post_init__(self) -> None:
        firsts = self.first_seen
        self.known = dict(zip(firsts, map(av.known_from, firsts.values(), itertools.repeat(self.since)), strict=True))
        order = sorted(self.known.items(), key=operator.itemgetter(1))  # by time alone: most share history's start
        self.known_times = list(map(operator.itemgetter(1), order))
        self.known_ids = list(map(operator.itemgetter(0), order))

    def known_between(self, start: float, end: float) -> list[str]:
        """The devices history came to know within (start, end)."""
        return self.known_ids[bisect.bisect_right(self.known_times, start) : bisect.bisect_left(self.known_times, end)]

    def known_by(self, at: float) -> int:
        """How many devices history knew by `at`."""
        return bisect.bisect_right(self.known_times, at)


class DeviceFigures(NamedTuple):
    """One device's figures over one window (a tuple: made ~100,000 times a report, cheaper than a dataclass)."""

    ratio: float | None
    down_s: float
    outages: int


@dataclass(frozen=True)
class Figures:
    """Every device's figures over one window: those that differ, and the one shared by the rest."""

    special: dict[str, DeviceFigures]
    plain: DeviceFigures  # a device known from the window's start (or history's) with no outage and no silence
    plain_count: int
    begins: float  # a device history knew only after this has no figures (group_rows.py: no ratio)

    def summary(self) -> av.Group:
        """The mean over every device's ratio, as av.group (the plain ones counted, not listed)."""
        return av.group([f.ratio for f in self.special.values()], (self.plain.ratio, self.plain_count))


_DEVICES = "SELECT d.id, d.first_seen, r.name, r.site FROM devices d LEFT JOIN registry r ON r.device_id = d.id"
_SITES_DEVICES = "SELECT d.id, d.first_seen, r.name, r.site FROM registry r JOIN devices d ON d.id = r.device_id WHERE "


def _members(conn: Connection, limited: tuple[str, ...] | None, tags: bool) -> tuple[list[Any], dict[str, list[str]]]:
    """The devices' (id, first_seen, name, site) rows and (with `tags`) their tags: every device, or these sites'."""
    if limited is None:
        rows, (only, args) = conn.execute(_DEVICES).fetchall(), ("", [])
    else:
        term, args = scope.site_is("r.site", limited)
        rows = conn.execute(_SITES_DEVICES + term, args).fetchall()
        only, args = scope.device_in("device_id", limited)
    by_device: dict[str, list[str]] = defaultdict(list)
    if tags:
        sql = f"SELECT device_id, tag FROM device_tags{' WHERE ' + only if only else ''} ORDER BY tag"
        for device_id, tag in conn.execute(sql, args).fetchall():
            by_device[device_id].append(tag)
    return rows, by_device


def _columns(rows: list[Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Per device, its first report, name and site: each dict made in C from the rows' columns."""
    if not rows:
        return {}, {}, {}
    ids, first, names, sites = zip(*rows, strict=True)
    return dict(zip(ids, first, strict=True)), dict(zip(ids, names, strict=True)), dict(zip(ids, sites, strict=True))


def population(conn: Connection, start: float, end: float, tags: bool, sites: Sequence[str] | None = None) -> Fleet:
    """Every device (or only those of `sites`, §14) with its name, site (and with `tags` its tags), and the
    window's blind time (the monitor's: everyone's) and silences."""
    limited = None if sites is None else tuple(sites)
    rows, by_device = _members(conn, limited, tags)
    first_seen, names, sites_of = _columns(rows)
    return Fleet(
        first_seen=first_seen, names=names, sites=sites_of, tags=by_device, since=history_since(conn),
        blind=blind(conn, start, end), silences=Silences(conn, start, end), limited=limited,
    )  # fmt: skip


class Downtime(NamedTuple):
    """Per device, its outages and seconds down in a window (none: not listed); its outages' times to end."""

    sums: dict[str, tuple[int, float]]
    ended: Joined


def downtime(conn: Connection, window: av.Interval, sites: Sequence[str] | None = None) -> Downtime:
    """Per device (of these sites, or every one): (outages, seconds down) within the window from when history knew
    it, and the times to end of its outages started in the window (the window's outages read once for both)."""
    since = history_since(conn)
    start = max(window[0], since) if since is not None else window[0]
    where, args = scoped(sites, 5)
    sql = _DOWN.format(scope=where, ended=joined_ms(conn, "ended_ms"))
    rows = conn.execute(sql, ("outage", window[0], window[1], start, *args)).fetchall()
    return Downtime({row[0]: (int(row[1]), float(row[2])) for row in rows if row[1]}, joined(rows, 3))


def _whole_fleet(silence: Silence) -> bool:
    return silence.device_id is None and silence.tag is None and silence.site is None and silence.device_ids is None


def _candidates(conn: Connection, fleet: Fleet, silence: Silence) -> Iterable[str]:
    """The devices a (device-level, not whole-fleet) silence may cover; covers() decides each."""
    if silence.device_ids is not None:
        return silence.device_ids
    if silence.device_id is not None:
        return [silence.device_id]
    if silence.tag is not None:
        rows = conn.execute("SELECT device_id FROM device_tags WHERE tag = ?", (silence.tag,)).fetchall()
        return [r[0] for r in rows]
    return [d for d, site in fleet.sites.items() if site == silence.site]


def _exact(conn: Connection, fleet: Fleet, window: av.Interval, ids: list[str]) -> dict[str, DeviceFigures]:
    """The devices a silence may cover, computed from their outage rows by shared/availability.py."""
    start, end = window
    outages: dict[str, list[av.Interval]] = defaultdict(list)
    for _, part in chunks(ids):
        marks = ", ".join(f"?{at}" for at in range(4, 4 + len(part)))
        rows = conn.execute(f"{_OUTAGES} WHERE e.device_id IN ({marks})", ("outage", start, end, *part)).fetchall()
        for device_id, began, ended in rows:
            outages[device_id].append((began, ended if ended is not None else end))
    entries = registry(conn, ids)
    out = {}
    for device_id in ids:
        known = fleet.known[device_id]
        quiet = fleet.silences.covering(device_id, "", entries.get(device_id))
        result = av.availability(window, outages[device_id], fleet.blind, quiet, known)
        seen = sum(1 for _, e in outages[device_id] if e > max(start, known))
        out[device_id] = DeviceFigures(result.ratio, result.down_s, seen)
    return out


def figures(conn: Connection, fleet: Fleet, window: av.Interval, down: Downtime) -> Figures:
    """Every device's ratio, time down and outages over the window (docs/history.md#availability), from its
    downtime (read beside, or here)."""
    start, end = window
    held = [s for s in fleet.silences.device_level() if s.starts_at < end and s.ends_at > start]
    dark = av.clip(fleet.blind + [(s.starts_at, s.ends_at) for s in held if _whole_fleet(s)], start, end)
    covered = {d for s in held if not _whole_fleet(s) for d in _candidates(conn, fleet, s) if d in fleet.known}
    begins = max(start, fleet.since) if fleet.since is not None else start
    covered.update(fleet.known_between(begins, end))  # known inside the window: row by row
    sums = dict(down.sums)
    for stretch in dark:  # the time down within the fleet's unknown or silenced stretches is not counted
        for device_id, (_, seconds) in downtime(conn, stretch, fleet.limited).sums.items():
            n, total = sums.get(device_id, (0, 0.0))
            sums[device_id] = (n, total - seconds)
    counted = av.counted_s(window, dark, begins)  # every device known by `begins` counts the same time
    special = {}
    for device_id, (n, seconds) in sums.items():
        if fleet.known.get(device_id, math.inf) <= begins and counted > 0:
            ratio = min(1.0, max(0.0, 1.0 - seconds / counted))
            special[device_id] = DeviceFigures(ratio, max(0.0, seconds), n)
    special.update(_exact(conn, fleet, window, sorted(covered)))
    plain_count = fleet.known_by(begins) - sum(1 for d in special if fleet.known[d] <= begins)
    plain = DeviceFigures(1.0 if counted > 0 else None, 0.0, 0)
    return Figures(special, plain, plain_count, begins)
