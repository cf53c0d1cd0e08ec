"""MTTA and MTTR by group over a window (§13): the medians of the times to acknowledge and to end.

At fleet size a month starts about a million and a half episodes. The database reads them (one index range per
span bracket) and joins each device's times, in milliseconds, into one text: its outages' times to end with their
time down (fleet.py), its incidents' times to acknowledge and to end in one read (here), each beside the report's
other reads (beside.py). A few hundred thousand rows reach Python instead of a million and a half, and the texts
become numbers one group at a time (Grouping.medians): one split per group, not one per device.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from shared import availability as av
from shared.store.dialect import Connection
from shared.store.episodes import started_sql

FLEET = ("fleet",)  # the medians' key of the whole fleet (no group's key is a tuple)
Keys = Callable[[str], list[Any]]
Scope = tuple[str, list[Any]]  # a WHERE clause on alias e (numbered from ?4) and its arguments; ("", []): every device
Joined = list[tuple[str, str | None]]  # per device, its times in ms joined with commas (None: none); may repeat


def joined_ms(conn: Connection, seconds: str, when: str) -> str:
    """The aggregate joining a group's `seconds` (an expression on alias e) where `when` holds, as whole ms."""
    return conn.dialect.joined.format(
        f"CASE WHEN {when} THEN CAST(CAST(ROUND(({seconds}) * 1000) AS BIGINT) AS TEXT) END"
    )


TO_END = ("e.ended - e.started", "e.ended IS NOT NULL")  # closed: its time to recover


class IncidentTimes(NamedTuple):
    """Per device, its incidents' times to acknowledge and to end (each joined, ms)."""

    acked: Joined
    ended: Joined


def incident_times(conn: Connection, window: av.Interval, scope: Scope = ("", [])) -> IncidentTimes:
    """The times to acknowledge and to end of the incidents started in the window (scope: only its devices')."""
    inner = started_sql("e.device_id, e.started, e.ended, e.ack_at", "1 = 1")
    inner = f"SELECT * FROM ({inner}) AS e{scope[0]}" if scope[0] else inner
    acked, ended = joined_ms(conn, "e.ack_at - e.started", "e.ack_at IS NOT NULL"), joined_ms(conn, *TO_END)
    sql = f"SELECT e.device_id, {acked}, {ended} FROM ({inner}) AS e GROUP BY e.device_id"
    rows = conn.execute(sql, ("incident", *window, *scope[1])).fetchall()
    return IncidentTimes([(d, a) for d, a, _ in rows], [(d, e) for d, _, e in rows])


class Grouping(dict[str, list[str]]):
    """Per device, the list its joined times go to: one per slot (the tuple of its groups, `slot_of`'s or `keys`')."""

    def __init__(self, slot_of: dict[str, tuple[Any, ...]], keys: Keys) -> None:
        super().__init__()
        self.keys = keys
        self.slots: dict[tuple[Any, ...], list[str]] = defaultdict(list)
        self.update({device_id: self.slots[slot] for device_id, slot in slot_of.items()})

    def __missing__(self, device_id: str) -> list[str]:
        found = self[device_id] = self.slots[tuple(self.keys(device_id))]  # a device the fleet no longer lists
        return found

    def medians(self, found: Joined) -> dict[Any, float | None]:
        """The median by group (and FLEET's) of these times, in seconds, emptying the slots' lists after.

        A group's times are its one slot's (by site or device), or its slots' together (by tag).
        """
        for device_id, text in found:
            if text:
                self[device_id].append(text)
        values = {slot: _values(texts) for slot, texts in self.slots.items() if texts}
        parts: dict[Any, list[list[int]]] = defaultdict(list)
        for slot, held in values.items():
            for key in slot:
                parts[key].append(held)
        out = {key: _seconds(held[0] if len(held) == 1 else _chained(held)) for key, held in parts.items()}
        for texts in self.slots.values():
            texts.clear()
        return out | ({FLEET: _seconds(_chained(values.values()))} if values else {})


def _values(texts: list[str]) -> list[int]:
    """The numbers in these joined texts, in one split."""
    return list(map(int, ",".join(texts).split(",")))


def _chained(lists: Iterable[list[int]]) -> list[int]:
    return list(itertools.chain.from_iterable(lists))


def _seconds(ms: list[int]) -> float | None:
    found = av.median(ms)
    return None if found is None else found / 1000


def medians(found: Joined, grouping: Grouping | None) -> dict[Any, float | None]:
    """The median by group of these times (FLEET: the whole fleet's; grouping None: only it)."""
    if grouping is not None:
        return grouping.medians(found)
    texts = [text for _, text in found if text]
    return {FLEET: _seconds(_values(texts))} if texts else {}
