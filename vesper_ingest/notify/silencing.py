"""The silences the notifier obeys (shared/silences.py), re-read with each delivery, and what their ends owe.

A silence that was active and is no longer (its end came, or an operator ended it) hands back what is
still wrong within it, as events to offer again: each is told once unless its channel was told before
the silence began. The silences seen active are kept in `meta`, so an end that passes while the ingest
is stopped is still honoured at its next start.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from shared import store
from shared.silences import Silence, silenced_until

META = "silences_watched"


class Silencing:
    """The current silences and the ids of those seen active."""

    def __init__(self) -> None:
        self.current: list[Silence] = []
        self.watched: dict[int, Silence] = {}
        self.changed = False

    def load(self, conn: store.Connection) -> None:
        """The watched silences as the database holds them."""
        ids = json.loads(store.get_meta(conn, META, "[]") or "[]")
        self.watched = {s.id: s for s in store.silences_by_id(conn, ids)}

    def refresh(self, conn: store.Connection, now: float) -> list[dict[str, Any]]:
        """Re-read the silences; returns what is wrong now within each one that ended since the last refresh."""
        self.current = store.silences(conn, now)
        active = {s.id: s for s in self.current if s.active(now)}
        ended = [s for s_id, s in self.watched.items() if s_id not in active]
        self.changed = active.keys() != self.watched.keys()
        self.watched = active
        return [problem for silence in ended for problem in store.problems_in_scope(conn, silence)]

    def covers(
        self, device_id: str, subject: str, now: float, entry_of: Callable[[str], tuple[set[str], str | None]]
    ) -> bool:
        """True while an active silence covers the device's subject ("" for its liveness).

        The device's registry entry (its tags and site) is read only when an active silence names a tag or a
        site; a bulk silence's device list is a frozenset, so its size costs nothing here.
        """
        active = [s for s in self.current if s.active(now)]
        tags, site = entry_of(device_id) if any(s.reads_registry for s in active) else (set(), None)
        return silenced_until(active, device_id, subject, tags, now, site) is not None

    def save(self, conn: store.Connection) -> None:
        """Keep the watched ids, in the caller's transaction."""
        store.set_meta(conn, META, json.dumps(sorted(self.watched)))
