"""MTTA and MTTR by group over a window (§13): the medians of the times to acknowledge and to end.

At fleet size a month starts about a million and a half episodes. The database reads them (one index range per
span bracket; episodes_span covers every column read) and joins each device's times, in milliseconds, into one
text: a few hundred thousand rows reach Python instead of a million and a half, and the sort that groups them is
the database's work, done beside the report's other reads (beside.py). Each device's list then goes to its
group's in one step (Grouping.medians).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable
from typing import Any, NamedTuple

from shared import availability as av
from shared.store.dialect import Connection
from shared.store.episodes import started_sql

FLEET = ("fleet",)  # the medians' key of the whole fleet (no group's key is a tuple)
Keys = Callable[[str], list[Any]]
Scope = tuple[str, list[Any]]  # a WHERE clause on alias e (numbered from ?4) and its arguments; ("", []): every device


class Times(NamedTuple):
    """Each device's times read (in ms), and the fleet's median of them, found by the thread that read them."""

    devices: list[tuple[str, list[int]]]  # a row per kind read: a device may repeat
    fleet: dict[Any, float | None]  # {FLEET: the median}, or {} for no times


_TO_END = ("e.ended - e.started", "e.ended IS NOT NULL", ("outage", "incident"))  # closed: its time to recover
_TO_ACK = ("e.ack_at - e.started", "e.ack_at IS NOT NULL", ("incident",))  # acknowledged: its time to acknowledge


def _joined_sql(conn: Connection, value: str, where: str, scope: str) -> str:
    """Per device, the `value` (seconds, rounded to the millisecond) of each episode of kind ?1 started in [?2, ?3)
    that meets `where`, joined with commas; `scope` filters the devices (alias e)."""
    inner = started_sql(f"e.device_id, CAST(ROUND(({value}) * 1000) AS BIGINT) AS ms", where)
    inner = f"SELECT * FROM ({inner}) AS e{scope}" if scope else inner
    joined = conn.dialect.joined.format("CAST(e.ms AS TEXT)")
    return f"SELECT e.device_id, {joined} FROM ({inner}) AS e GROUP BY e.device_id"


def _times(conn: Connection, measure: tuple[str, str, tuple[str, ...]], window: av.Interval, scope: Scope) -> Times:
    value, where, kinds = measure
    sql = _joined_sql(conn, value, where, scope[0])
    rows = [row for kind in kinds for row in conn.execute(sql, (kind, *window, *scope[1])).fetchall()]
    devices = [(device_id, list(map(int, joined.split(",")))) for device_id, joined in rows]
    return Times(devices, {FLEET: _seconds(_joined([part for _, part in devices]))} if devices else {})


def to_ack(conn: Connection, window: av.Interval, scope: Scope = ("", [])) -> Times:
    """Each device's times to acknowledge its incidents started in the window (scope: only its devices')."""
    return _times(conn, _TO_ACK, window, scope)


def to_end(conn: Connection, window: av.Interval, scope: Scope = ("", [])) -> Times:
    """Each device's times to end (recover) of its outages and incidents started in the window."""
    return _times(conn, _TO_END, window, scope)


class Grouping(dict[str, list[int]]):
    """Per device, the list its times go to: one per slot (the tuple of its groups, `slot_of`'s or `keys`')."""

    def __init__(self, slot_of: dict[str, tuple[Any, ...]], keys: Keys) -> None:
        super().__init__()
        self.keys = keys
        self.slots: dict[tuple[Any, ...], list[int]] = defaultdict(list)
        self.update({device_id: self.slots[slot] for device_id, slot in slot_of.items()})

    def __missing__(self, device_id: str) -> list[int]:
        found = self[device_id] = self.slots[tuple(self.keys(device_id))]  # a device the fleet no longer lists
        return found

    def medians(self, found: Times) -> dict[Any, float | None]:
        """The median by group (and FLEET's) of these times, in seconds, emptying the slots' lists after.

        A group's times are its one slot's list (by site or device), or its slots' joined (by tag).
        """
        for device_id, part in found.devices:
            self[device_id].extend(part)
        parts: dict[Any, list[list[int]]] = defaultdict(list)
        for slot, held in self.slots.items():
            if held:
                for key in slot:
                    parts[key].append(held)
        out = {key: _seconds(held[0] if len(held) == 1 else _joined(held)) for key, held in parts.items()}
        for held in self.slots.values():
            held.clear()
        return out | found.fleet


def _joined(lists: list[list[int]]) -> list[int]:
    return list(itertools.chain.from_iterable(lists))


def _seconds(ms: list[int]) -> float | None:
    found = av.median(ms)
    return None if found is None else found / 1000


def medians(found: Times, grouping: Grouping | None) -> dict[Any, float | None]:
    """The median by group of to_ack's or to_end's times (FLEET: the whole fleet's; grouping None: only it)."""
    return found.fleet if grouping is None else grouping.medians(found)
