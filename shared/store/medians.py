"""MTTA and MTTR by group over a window (§13): the medians of the times to acknowledge and to end.

At fleet size a month starts about a million and a half episodes. The database reads them (one index range per
span bracket) and joins each device's times, in milliseconds, into one text: its outages' times to end with their
time down (fleet.py), its incidents' times to acknowledge and to end in one read (here: on SQLite device by device,
no sort), each beside the report's other reads (beside.py). A few hundred thousand rows reach Python instead of a
million and a half, and numpy makes the texts numbers and sorts them by group in C (Grouping.medians).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from shared import availability as av
from shared.store.dialect import Connection
from shared.store.episodes import started_sql
from shared.store.history_rows import scoped

FLEET = ("fleet",)  # the medians' key of the whole fleet (no group's key is a tuple)
Keys = Callable[[str], list[Any]]


class Joined(NamedTuple):
    """Per device read (a device may repeat): its times in ms joined with commas (None: none), and how many (ids
    empty: the fleet's times in one text, incident_times' by_device False)."""

    ids: tuple[str, ...]
    texts: tuple[str | None, ...]
    counts: tuple[int, ...]


def _case(seconds: str, when: str) -> str:
    return f"CASE WHEN {when} THEN CAST(ROUND(({seconds}) * 1000) AS BIGINT) END"


def ms(seconds: str, when: str, name: str) -> str:
    """A column `name` of a read's rows: `seconds` (an expression on alias e) in whole ms where `when` holds."""
    return f"{_case(seconds, when)} AS {name}"


def joined_ms(conn: Connection, name: str) -> str:
    """Two aggregates of an ms column (alias e; NULL: none): its values joined with commas, and how many.

    Made before the database groups the rows (ms), the sort that groups them carries two integers, not three
    times."""
    return f"{conn.dialect.joined.format(f'CAST(e.{name} AS TEXT)')}, COUNT(e.{name})"


def joined(rows: list[Any], at: int) -> Joined:
    """The Joined of these rows: the device in their first column, joined_ms' two at `at` (columns made in C)."""
    columns = list(zip(*rows, strict=True)) or [()] * (at + 2)
    return Joined(columns[0], columns[at], columns[at + 1])


def together(*parts: Joined) -> Joined:
    """The reads' times together."""
    return Joined(*(sum((part[n] for part in parts), ()) for n in range(3)))


TO_END = ("e.ended - e.started", "e.ended IS NOT NULL")  # closed: its time to recover
TO_ACK = ("e.ack_at - e.started", "e.ack_at IS NOT NULL")  # acknowledged: its time to acknowledge


class IncidentTimes(NamedTuple):
    """Per device, its incidents' times to acknowledge and to end (each joined, ms)."""

    acked: Joined
    ended: Joined


def incident_times(
    conn: Connection, window: av.Interval, sites: Sequence[str] | None = None, by_device: bool = True
) -> IncidentTimes:
    """The times to acknowledge and to end of the incidents started in the window (sites: only their devices').

    by_device False: for the fleet's medians alone (medians' grouping None), every time in one text, no device's
    (ids empty): no sort, no walk."""
    if by_device and conn.dialect.skip_scan and window[1] - window[0] >= WALK_FROM_S:
        return _walked(conn, window, sites)
    columns = f"e.device_id, {ms(*TO_ACK, 'acked')}, {ms(*TO_END, 'ended')}"
    inner = started_sql(columns, "1 = 1")
    where, args = scoped(sites, 4)
    inner = f"SELECT * FROM ({inner}) AS e{where}" if where else inner
    aggregates = f"{joined_ms(conn, 'acked')}, {joined_ms(conn, 'ended')}"
    params = ("incident", *window, *args)
    if not by_device:
        acked, n_acked, ended, n_ended = conn.execute(f"SELECT {aggregates} FROM ({inner}) AS e", params).fetchone()
        return IncidentTimes(Joined((), (acked,), (n_acked,)), Joined((), (ended,), (n_ended,)))
    sql = f"SELECT e.device_id, {aggregates} FROM ({inner}) AS e GROUP BY e.device_id"
    rows = conn.execute(sql, params).fetchall()
    return IncidentTimes(joined(rows, 1), joined(rows, 3))


# SQLite groups by sorting: the month's million incidents sorted by device would be its report's costliest step.
# Instead each device with incidents is found in episodes_incidents' order (one seek each), its incidents started
# in the window are one range of it, their times joined there ("acked/ended", either list empty), and the whole
# comes as one row: a reader beside the report's own thread never waits for Python's lock row by row. At 100,000
# devices and ~1 incident a device every 3 days: 1 day 264 ms walked, 67 ms sorted; 7 days 354 / 319; 30 days
# 626 / 1,030 (docs/benchmarks.md).
WALK_FROM_S = 7 * 86400.0  # a shorter window's incidents are sorted faster than every device is sought (below)
_DEVICES = (
    "WITH RECURSIVE ids(device_id) AS (SELECT MIN(device_id) FROM episodes INDEXED BY episodes_incidents"
    " WHERE kind = 'incident' UNION ALL SELECT (SELECT MIN(device_id) FROM episodes INDEXED BY episodes_incidents"
    " WHERE kind = 'incident' AND device_id > ids.device_id) FROM ids WHERE ids.device_id IS NOT NULL)"
)
_EACH = (
    "SELECT COALESCE(group_concat(CAST({acked} AS TEXT), ','), '') || '/' || COALESCE(group_concat(CAST({ended} AS"
    " TEXT), ','), '') FROM episodes e WHERE e.kind = 'incident' AND e.device_id = ids.device_id"
    " AND e.started >= ?2 AND e.started < ?3"
)


def _walked(conn: Connection, window: av.Interval, sites: Sequence[str] | None) -> IncidentTimes:
    """incident_times device by device, in one row: the ids joined by commas (which no device id holds:
    shared/topics.py), each one's times by '/'."""
    each = _EACH.format(acked=_case(*TO_ACK), ended=_case(*TO_END))
    where, args = scoped(sites, 4, "AND", "ids.device_id")
    sql = f"{_DEVICES} SELECT group_concat(ids.device_id, ','), group_concat(({each}), '/') FROM ids"
    params = ("incident", *window, *args)  # ?1 as every read's: the kind is written out, as the partial index asks
    ids, times = conn.execute(f"{sql} WHERE ids.device_id IS NOT NULL{where}", params).fetchone()
    if ids is None:
        return IncidentTimes(Joined((), (), ()), Joined((), (), ()))
    devices, parts = tuple(ids.split(",")), times.split("/")
    return IncidentTimes(_counted(devices, parts[0::2]), _counted(devices, parts[1::2]))


def _counted(ids: tuple[str, ...], texts: list[str]) -> Joined:
    """Joined from each device's joined text ('': none)."""
    return Joined(ids, tuple(t or None for t in texts), tuple(t.count(",") + 1 if t else 0 for t in texts))


class Grouping:
    """The groups a device's times go to: its slot (the tuple of its groups, `slot_of`'s or `keys`'), numbered."""

    def __init__(self, slot_of: dict[str, tuple[Any, ...]], keys: Keys) -> None:
        self.keys = keys
        self.numbers: dict[tuple[Any, ...], int] = {}
        self.slot_of = {device_id: self._number(slot) for device_id, slot in slot_of.items()}
        self._groups: tuple[int, Groups] | None = None

    def _number(self, slot: tuple[Any, ...]) -> int:
        return self.numbers.setdefault(slot, len(self.numbers))

    def groups(self) -> Groups:
        """Each group's slots (numbers); those of one slot apart (by site or device: all), made once per slots."""
        if self._groups is None or self._groups[0] != len(self.numbers):
            slots: dict[Any, list[int]] = defaultdict(list)
            for slot, number in self.numbers.items():
                for key in slot:
                    slots[key].append(number)
            single = [(key, numbers[0]) for key, numbers in slots.items() if len(numbers) == 1]
            several = {key: numbers for key, numbers in slots.items() if len(numbers) > 1}
            only = ([key for key, _ in single], np.array([n for _, n in single], dtype=np.int64))
            self._groups = (len(self.numbers), Groups(slots, only, several))
        return self._groups[1]

    def medians(self, found: Joined) -> dict[Any, float | None]:
        """The median by group (and FLEET's) of these times, in seconds.

        Every value is made a number and sorted within its slot by numpy, in C; a group's median is its one slot's
        middle (by site or device), or that of its slots' values together (by tag).
        """
        ids, texts, counts = found
        if not any(counts):
            return {}
        slots = np.fromiter(map(self.slot_of.get, ids, itertools.repeat(-1)), np.int64, len(ids))
        for at in np.flatnonzero(slots < 0).tolist():  # a device the fleet no longer lists
            slots[at] = self.slot_of[ids[at]] = self._number(tuple(self.keys(ids[at])))
        values = _values(texts)
        ordered = _by_slot(values, np.repeat(slots, np.array(counts, dtype=np.int64)), len(self.numbers))
        return self._by_key(ordered) | {FLEET: _seconds(values)}

    def _by_key(self, ordered: Ordered) -> dict[Any, float | None]:
        """Each group's median from the values sorted within their slots."""
        values, sizes = ordered
        starts = np.cumsum(sizes) - sizes
        held = np.flatnonzero(sizes)
        middles = np.zeros(len(sizes))  # each slot's median in ms (a slot without times: never read)
        middles[held] = (values[starts[held] + (sizes[held] - 1) // 2] + values[starts[held] + sizes[held] // 2]) / 2
        groups = self.groups()
        keys, numbers = groups.only
        has_times = sizes[numbers] > 0
        seconds = (middles[numbers[has_times]] / 1000).tolist()
        out = dict(zip(itertools.compress(keys, has_times.tolist()), seconds, strict=True))
        for key, several in groups.several.items():
            parts = [values[starts[n] : starts[n] + sizes[n]] for n in several if sizes[n]]
            if parts:
                out[key] = _seconds(np.concatenate(parts))
        return out


class Groups(NamedTuple):
    """A grouping's groups: each one's slots (numbers), the groups of one slot (keys, numbers) and the others'."""

    slots: dict[Any, list[int]]
    only: tuple[list[Any], Any]
    several: dict[Any, list[int]]


Ordered = tuple[Any, Any]  # (numpy int64 values sorted by slot then value, each slot's count)


def _values(texts: Sequence[str | None]) -> Any:
    """The numbers in these joined texts (None: none), parsed in C (numpy)."""
    return np.fromstring(",".join(filter(None, texts)), dtype=np.int64, sep=",")


def _by_slot(values: Any, slots: Any, count: int) -> Ordered:
    """The values sorted by slot, then value: one sort of (slot, value) packed in one int64 where it fits."""
    base = int(values.min())
    span = int(values.max()) - base + 1
    if count * span < 2**62:
        packed = slots * span + (values - base)
        packed.sort()
        return packed % span + base, np.bincount(slots, minlength=count)
    return values[np.lexsort((values, slots))], np.bincount(slots, minlength=count)


def _seconds(ms: Any) -> float | None:
    return float(np.median(ms)) / 1000 if len(ms) else None


def medians(found: Joined, grouping: Grouping | None) -> dict[Any, float | None]:
    """The median by group of these times (FLEET: the whole fleet's; grouping None: only it)."""
    if grouping is not None:
        return grouping.medians(found)
    return {FLEET: _seconds(_values(found.texts))} if any(found.counts) else {}
