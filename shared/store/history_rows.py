"""What history's reads share (§13): when history began, the fleet's blind time, silences, registry, episodes' JSON.

The rules (intervals, availability) live in shared/availability.py; this module only reads rows for them.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from shared.availability import Interval, union
from shared.events import iso
from shared.silences import Silence
from shared.store import scope
from shared.store.dialect import Connection
from shared.store.episodes import overlapping_sql
from shared.store.lifecycle import silences_between

NUMBERED = re.compile(r"\?(\d+)")
CHUNK = 1000  # ids per IN (...) list
EPISODE = "e.id, e.kind, e.device_id, e.subsystem, e.started, e.ended, e.worst, e.changes, e.ack_at, e.ack_by," \
    " e.first_event, e.last_event"  # fmt: skip


def blind(conn: Connection, start: float, end: float) -> list[Interval]:
    """The fleet's blind stretches within [start, end) as a union (an open one runs to `end`)."""
    rows = conn.execute(overlapping_sql("e.started, e.ended"), ("blind", start, end)).fetchall()
    return union((max(s, start), min(e if e is not None else end, end)) for s, e in rows)


def renumbered(sql: str, numbers: dict[int, int]) -> str:
    """A statement with some numbered placeholders renamed (?1 → ?4), so one SELECT can appear twice in a query."""
    return NUMBERED.sub(lambda m: f"?{numbers.get(int(m.group(1)), int(m.group(1)))}", sql)


def scoped(
    sites: Sequence[str] | None, first: int, word: str = "WHERE", column: str = "e.device_id"
) -> tuple[str, list[Any]]:
    """The clause `word` (WHERE, or AND) "`column` is one of these sites' devices" (§14, scope.device_in) with its
    placeholders numbered from ?first, and its arguments; ("", []) for None (every device)."""
    if sites is None:
        return "", []
    term, args = scope.device_in(column, tuple(sites))
    numbers = itertools.count(first)
    return f" {word} " + re.sub(r"\?", lambda _: f"?{next(numbers)}", term), args


def chunks(ids: Sequence[str]) -> Iterator[tuple[str, list[str]]]:
    """The ids in slices, each with its placeholders ("?, ?, …")."""
    for at in range(0, len(ids), CHUNK):
        part = list(ids[at : at + CHUNK])
        yield ", ".join("?" * len(part)), part


@dataclass(frozen=True)
class Entry:
    """A device's registry entry as history reads it (its current name, site and tags)."""

    name: str | None = None
    site: str | None = None
    tags: frozenset[str] = frozenset()


def registry(conn: Connection, ids: Iterable[str]) -> dict[str, Entry]:
    """The registry entries of these devices (those without one are absent)."""
    out: dict[str, Entry] = {}
    for marks, part in chunks(sorted(set(ids))):
        rows = conn.execute(f"SELECT device_id, name, site, tags FROM registry WHERE device_id IN ({marks})", part)
        out.update((d, Entry(n, s, frozenset(json.loads(t)))) for d, n, s, t in rows.fetchall())
    return out


class Silences:
    """The silences that overlapped a window, asked per device and subject (§9's covers, current tags and site)."""

    def __init__(self, conn: Connection, start: float, end: float) -> None:
        self.all = silences_between(conn, start, end)

    def covering(self, device_id: str, subject: str, entry: Entry | None) -> list[Interval]:
        """The times silences covering (device, subject) held ("" for the device itself: its outages)."""
        entry = entry or Entry()
        return [(s.starts_at, s.ends_at) for s in self.all if s.covers(device_id, subject, set(entry.tags), entry.site)]

    def device_level(self) -> list[Silence]:
        """The silences of whole devices (no subsystem): maintenance windows, left out of availability."""
        return [s for s in self.all if s.subsystem is None]


def was_silenced(quiet: list[Interval], started: float, ended: float) -> bool:
    """True when a silence's time overlapped the episode's [started, ended) (an instant one: contained it)."""
    return any(s < ended and e > started or s <= started < e for s, e in quiet)


def episode_dict(row: Sequence[Any], now: float, silenced: bool) -> dict[str, Any]:
    """An episode row (EPISODE's columns) in the API's form; an open one lasts until now."""
    id_, kind, device_id, subsystem, started, ended, worst, changes, ack_at, ack_by, first, last = row
    return {
        "id": int(id_), "kind": kind, "device_id": device_id, "subsystem": subsystem or None,
        "started": iso(started), "ended": iso(ended),
        "duration_s": round((ended if ended is not None else max(now, started)) - started, 3),
        "worst": worst, "changes": int(changes),
        "acknowledged": None if ack_at is None else {"at": iso(ack_at), "by": ack_by},
        "silenced": silenced, "first_event": first, "last_event": last,
    }  # fmt: skip


def episode_silenced(row: Sequence[Any], silences: Silences, entries: dict[str, Entry], now: float) -> bool:
    """Whether a silence covering this episode (its device, or its subsystem's for an incident) overlapped it."""
    kind, device_id, subsystem, started, ended = row[1], row[2], row[3], row[4], row[5]
    if kind == "blind":
        return False
    quiet = silences.covering(device_id, subsystem, entries.get(device_id))
    return was_silenced(quiet, started, ended if ended is not None else max(now, started))
