"""History's rows (SPEC §13): episodes, written by the ingest in its transactions, and the one rule of `span`.

An episode is one problem from its start to its end: an outage (a device offline → online), an incident (a
device's subsystem raised → cleared, a flapping stretch folded in) or a blind stretch (the ingest could not
see: device_id is the ingest's source id). `ended` is NULL while it is open, and at most one is open per
(kind, device_id, subsystem). `span` is -1 while open; once closed, the power-of-two bracket of its length
in hours, so the episodes overlapping a window are one index range per bracket (overlapping_sql).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shared.store import sets
from shared.store.dialect import Connection

SINCE_KEY = "history_since"  # meta, written at the first start with history (vesper_ingest/history_start.py)
SPAN_UNIT_S = 3600.0
MAX_SPAN = 20  # 2**20 hours: longer than anything kept (history.retention_days is checked against it)
COLUMNS = "id, kind, device_id, subsystem, started, ended, worst, changes, ack_at, ack_by, first_event, last_event"


def history_since(conn: Connection) -> float | None:
    """When history began (None: no ingest has started with history yet): before it, history does not know."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (SINCE_KEY,)).fetchone()
    return float(row[0]) if row and row[0] else None


def span(length_s: float) -> int:
    """A closed episode's bracket: the smallest k with length <= 2**k hours (0 for an hour or less)."""
    hours = max(length_s, 0.0) / SPAN_UNIT_S
    return min(MAX_SPAN, max(0, math.ceil(math.log2(hours)))) if hours > 1 else 0


def overlapping_sql(columns: str = COLUMNS, alias: str = "e", touching: bool = False) -> str:
    """A SELECT of the episodes of kind ?1 that overlap [?2, ?3): one index range (episodes_span) per bracket.

    A closed episode of bracket k that ends after ?2 started at most 2**k hours before it; an open one (span -1)
    overlaps if it started before ?3. Parameters: ?1 kind, ?2 from, ?3 to (epoch seconds). touching: also those
    ending at ?2 exactly (so that every episode started in the window is among them, a moment-long one at ?2 too).
    """
    after = ">=" if touching else ">"
    parts = [
        f"SELECT {columns} FROM episodes {alias} WHERE {alias}.kind = ?1 AND {alias}.span = -1 AND {alias}.started < ?3"
    ]
    for k in range(MAX_SPAN + 1):
        parts.append(
            f"SELECT {columns} FROM episodes {alias} WHERE {alias}.kind = ?1 AND {alias}.span = {k}"
            f" AND {alias}.started >= ?2 - {SPAN_UNIT_S * 2**k:.0f} AND {alias}.started < ?3"
            f" AND {alias}.ended {after} ?2"
        )
    return " UNION ALL ".join(parts)


def started_sql(columns: str, where: str) -> str:
    """The episodes of kind ?1 started in [?2, ?3) that meet `where` (alias e): one index range per bracket."""
    return " UNION ALL ".join(
        f"SELECT {columns} FROM episodes e WHERE e.kind = ?1 AND e.span = {k} AND e.started >= ?2"
        f" AND e.started < ?3 AND {where}"
        for k in range(-1, MAX_SPAN + 1)
    )


def newest_sql(
    kinds: Sequence[str], start: float, end: float, limit: int, after: tuple[float, int] | None,
    where: Sequence[str] = (), args: Sequence[Any] = (), columns: str = COLUMNS,
) -> tuple[str, list[Any]]:  # fmt: skip
    """The first `limit` episodes of these kinds overlapping [start, end), newest start first (then id), after the
    (started, id) a page ended on; `where` filters alias e. Each kind's bracket is an index range walked from its
    newest end, so a page reads about `limit` rows per bracket whatever the window holds."""
    parts: list[str] = []
    params: list[Any] = []
    page = ["e.started <= ?", "(e.started < ? OR e.id < ?)"] if after else []
    page_args = [after[0], after[0], after[1]] if after else []
    for kind in kinds:
        for k in range(-1, MAX_SPAN + 1):
            lower = ["e.ended IS NULL"] if k < 0 else ["e.started >= ?", "e.ended > ?"]
            lower_args = [] if k < 0 else [start - SPAN_UNIT_S * 2**k, start]
            terms = ["e.kind = ?", f"e.span = {k}", "e.started < ?", *lower, *page, *where]
            parts.append(
                f"SELECT * FROM (SELECT {columns} FROM episodes e WHERE {' AND '.join(terms)}"
                " ORDER BY e.started DESC, e.id DESC LIMIT ?) AS b"
            )
            params += [kind, end, *lower_args, *page_args, *args, limit]
    sql = f"SELECT * FROM ({' UNION ALL '.join(parts)}) AS newest ORDER BY started DESC, id DESC LIMIT ?"
    return sql, [*params, limit]


@dataclass
class Episode:
    """One episode as the ingest holds it while it is open (and until its last change is written)."""

    kind: str
    device_id: str
    subsystem: str
    started: float
    worst: str
    first_event: int | None = None
    last_event: int | None = None
    changes: int = 1
    ended: float | None = None
    ack_at: float | None = None
    ack_by: str | None = None
    stored: bool = False  # its row exists (else it is inserted at the flush)

    @property
    def key(self) -> tuple[str, str, str]:
        """What at most one open episode has: (kind, device_id, subsystem)."""
        return self.kind, self.device_id, self.subsystem

    def row(self) -> tuple[Any, ...]:
        """Its columns as written (kind … last_event, then span)."""
        closed = span(self.ended - self.started) if self.ended is not None else -1
        return (self.kind, self.device_id, self.subsystem, self.started, self.ended, self.worst, self.changes,
                self.ack_at, self.ack_by, self.first_event, self.last_event, closed)  # fmt: skip


_TYPES = ("text", "text", "text", "float8", "float8", "text", "integer", "float8", "text", "bigint", "bigint",
          "integer")  # fmt: skip


_HELD = "kind, device_id, subsystem, started, worst, first_event, last_event, changes, ended, ack_at, ack_by"


def load_open(conn: Connection) -> list[Episode]:
    """Every open episode (the episodes_ended index's NULL range)."""
    rows = conn.execute(f"SELECT {_HELD} FROM episodes WHERE ended IS NULL").fetchall()
    return [Episode(*row, stored=True) for row in rows]


def write(conn: Connection, episodes: Sequence[Episode]) -> None:
    """Insert the new ones and update the stored ones (found by their open key and start), each as one set."""
    sets.run(
        conn,
        "INSERT INTO episodes (kind, device_id, subsystem, started, ended, worst, changes, ack_at, ack_by,"
        " first_event, last_event, span) {rows}",
        _TYPES,
        [e.row() for e in episodes if not e.stored],
    )
    sets.run(
        conn,
        "UPDATE episodes SET ended = v.column5, worst = v.column6, changes = v.column7, ack_at = v.column8,"
        " ack_by = v.column9, last_event = v.column11, span = v.column12 FROM ({rows}) AS v"
        " WHERE episodes.device_id = v.column2 AND episodes.started = v.column4 AND episodes.kind = v.column1"
        " AND episodes.subsystem = v.column3 AND episodes.ended IS NULL",
        _TYPES,
        [e.row() for e in episodes if e.stored],
    )


def prune(conn: Connection, before: float) -> int:
    """Drop episodes that ended before `before`; returns how many."""
    return conn.execute("DELETE FROM episodes WHERE ended < ?", (before,)).rowcount


def oldest_event_at(conn: Connection) -> float | None:
    """The time of the oldest retained event (history's backfill starts there)."""
    first = conn.execute("SELECT min(ts) FROM events").fetchone()[0]
    return None if first is None else float(first)


def events_of_types(conn: Connection, types: Sequence[str], after: int, limit: int) -> list[tuple[Any, ...]]:
    """Retained events of these types after id `after`, oldest first: (id, ts, type, source_id, payload)."""
    marks = ", ".join("?" for _ in types)
    return conn.execute(
        f"SELECT id, ts, type, source_id, payload FROM events WHERE id > ? AND type IN ({marks}) ORDER BY id LIMIT ?",
        (after, *types, limit),
    ).fetchall()


def active_alerts(conn: Connection) -> list[tuple[str, str, str, float | None, str | None]]:
    """Every active alert as (device_id, subsystem, state, ack_at, ack_by)."""
    return conn.execute("SELECT device_id, subsystem, state, ack_at, ack_by FROM device_alerts").fetchall()


def load_all(conn: Connection) -> list[Episode]:
    """Every episode, in the order they were written (a small history's: tests and tools)."""
    rows = conn.execute(f"SELECT {_HELD} FROM episodes ORDER BY id").fetchall()
    return [Episode(*row, stored=True) for row in rows]
