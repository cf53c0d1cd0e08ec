"""How far the ingest has told of each silence (`silences.told`: 0 nothing, 1 silence_created, 2 silence_ended too).

The ingest writes it in the sweep's transaction with the events it tells, so a kill loses or repeats none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from shared.store.dialect import Connection

CREATED, ENDED = 1, 2
_UNTOLD = (
    "SELECT id, device_id, tag, subsystem, site, device_ids, ends_at, comment, created_by, ended_by, told"
    " FROM silences WHERE told < ? OR (told < ? AND ends_at <= ?) ORDER BY id LIMIT ?"
)


@dataclass(frozen=True)
class Untold:
    """A silence with something still to tell: its matchers, end, who made and who ended it, and `told` so far."""

    id: int
    device_id: str | None
    tag: str | None
    subsystem: str | None
    site: str | None
    device_ids: tuple[str, ...] | None
    ends_at: float
    comment: str | None
    created_by: str
    ended_by: str | None
    told: int


def untold_silences(conn: Connection, now: float, limit: int) -> list[Untold]:
    """Up to `limit` silences, oldest first, not yet told as created, or ended by `now` and not told so."""
    rows = conn.execute(_UNTOLD, (CREATED, ENDED, now, limit)).fetchall()
    return [Untold(*row[:5], _ids(row[5]), *row[6:]) for row in rows]


def _ids(text: str | None) -> tuple[str, ...] | None:
    """A bulk silence's device list (JSON), or None."""
    if text is None:
        return None
    ids = json.loads(text)
    return tuple(str(i) for i in ids) if isinstance(ids, list) else None


def mark_told(conn: Connection, told: dict[int, int]) -> None:
    """Record how far each silence is told now (never backwards)."""
    if told:
        conn.executemany("UPDATE silences SET told = ? WHERE id = ? AND told < ?", [(t, i, t) for i, t in told.items()])
