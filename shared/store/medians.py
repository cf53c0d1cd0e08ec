"""MTTA and MTTR by group over a window (§13): the medians of the times to acknowledge and to end.

At fleet size a month starts about a million and a half episodes, so the rows are read as (device, seconds)
pairs already subtracted by the database, one index range per span bracket (episodes_span covers every column
read), and each value is dropped into its group's list by a loop that stays in C (Grouping.medians).
"""

from __future__ import annotations

import itertools
import operator
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from typing import Any

from shared import availability as av
from shared.store.dialect import Connection
from shared.store.episodes import started_sql

FLEET = ("fleet",)  # the medians' key of the whole fleet (no group's key is a tuple)
Keys = Callable[[str], list[Any]]
Pairs = tuple[Iterable[str], list[float]]  # (device, value) rows as two columns, the devices to be read once
Scope = tuple[str, list[Any]]  # a WHERE clause on alias e (numbered from ?4) and its arguments; ("", []): every device


_TO_END = started_sql("e.device_id, e.ended - e.started", "e.ended IS NOT NULL")  # closed: its time to recover
_TO_ACK = started_sql("e.device_id, e.ack_at - e.started", "e.ack_at IS NOT NULL")  # acknowledged: time to acknowledge


def _pairs(conn: Connection, parts: list[tuple[str, tuple[Any, ...]]], scope: Scope) -> Pairs:
    """The (device, value) rows these statements read (only `scope`'s devices), as two columns (devices: once)."""
    where, args = scope
    found = [
        conn.execute(f"SELECT * FROM ({sql}) AS e{where}" if where else sql, (*params, *args)).fetchall()
        for sql, params in parts
    ]
    chain = itertools.chain.from_iterable
    return map(operator.itemgetter(0), chain(found)), list(map(operator.itemgetter(1), chain(found)))


class Grouping(dict[str, list[float]]):
    """Per device, the list its values go to: one per slot (the tuple of its groups, `slot_of`'s or `keys`')."""

    def __init__(self, slot_of: dict[str, tuple[Any, ...]], keys: Keys) -> None:
        super().__init__()
        self.keys = keys
        self.slots: dict[tuple[Any, ...], list[float]] = defaultdict(list)
        self.update({device_id: self.slots[slot] for device_id, slot in slot_of.items()})

    def __missing__(self, device_id: str) -> list[float]:
        found = self[device_id] = self.slots[tuple(self.keys(device_id))]  # a device the fleet no longer lists
        return found

    def medians(self, devices: Iterable[str], values: list[float]) -> dict[Any, float | None]:
        """The median of the values by group (and FLEET's), emptying the slots' lists after.

        Each value goes to its device's slot's list in C (a dict lookup and list.append through map(), no Python
        frame per row); a group's values are its one slot's list (by site or device), or its slots' joined.
        """
        deque(map(list.append, map(self.__getitem__, devices), values), maxlen=0)
        parts: dict[Any, list[list[float]]] = defaultdict(list)
        for slot, found in self.slots.items():
            if found:
                for key in slot:
                    parts[key].append(found)
        out = {key: av.median(found[0] if len(found) == 1 else _joined(found)) for key, found in parts.items()}
        for found in self.slots.values():
            found.clear()
        if values:
            out[FLEET] = av.median(values)
        return out


def _joined(lists: list[list[float]]) -> list[float]:
    return list(itertools.chain.from_iterable(lists))


def medians(
    conn: Connection, window: av.Interval, grouping: Grouping | None, scope: Scope = ("", [])
) -> tuple[dict[Any, float | None], dict[Any, float | None]]:
    """MTTA and MTTR by group (FLEET: the whole fleet's; grouping None: only it) over the episodes started in it.

    scope: only the devices it lets through are read (their groups' and FLEET's medians are theirs alone).
    """
    start, end = window
    to_ack = _pairs(conn, [(_TO_ACK, ("incident", start, end))], scope)
    to_end = _pairs(conn, [(_TO_END, ("outage", start, end)), (_TO_END, ("incident", start, end))], scope)
    if grouping is None:
        return _fleet(to_ack[1]), _fleet(to_end[1])
    return grouping.medians(*to_ack), grouping.medians(*to_end)


def _fleet(values: list[float]) -> dict[Any, float | None]:
    return {FLEET: av.median(values)} if values else {}
