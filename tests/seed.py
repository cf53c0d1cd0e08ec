"""Seeding for tests: writes the product no longer makes itself, kept here rather than in the store."""

from __future__ import annotations

from shared.store import Connection


def mark_offline(conn: Connection, device_id: str, cutoff: float) -> bool:
    """Compare-and-set a device offline if still unheard since cutoff; True only for the statement that changed it."""
    cur = conn.execute(
        "UPDATE devices SET liveness = 'offline' WHERE id = ? AND liveness != 'offline' AND first_seen IS NOT NULL"
        " AND COALESCE(last_seen, 0) <= ?",
        (device_id, cutoff),
    )
    return cur.rowcount == 1
