"""A token limited to sites (§14): the one home of "a device in these sites" in SQL, and what else it may see.

A device is in a token's sites iff its registry `site` is exactly one of them (a device without a registry
row or without a site is in none). Events of no device that it still sees are the monitor's own
(MONITOR_TYPES): whether the console can see is everyone's business. Every term uses the registry's index
registry_site, so it costs the sites' devices, not the fleet's.
"""

from __future__ import annotations

from typing import Any

from shared.store.dialect import Connection

MONITOR_TYPES = ("monitoring_interrupted", "monitoring_resumed")  # the ingest's own events, of no device
Term = tuple[str, list[Any]]


def site_is(column: str, sites: tuple[str, ...]) -> Term:
    """`column` (a registry site) is one of `sites`: the WHERE term and its arguments."""
    return f"{column} IN ({', '.join('?' * len(sites))})", list(sites)


def device_in(column: str, sites: tuple[str, ...]) -> Term:
    """`column` (a device id) is a device whose registry site is one of `sites`."""
    term, args = site_is("site", sites)
    return f"{column} IN (SELECT device_id FROM registry WHERE {term})", args


def event_in(sites: tuple[str, ...]) -> Term:
    """An event a site-limited caller sees: its devices' and the monitor's own."""
    term, args = device_in("source_id", sites)
    return f"({term} OR type IN ({', '.join('?' * len(MONITOR_TYPES))}))", [*args, *MONITOR_TYPES]


def device_ids(conn: Connection, sites: tuple[str, ...]) -> frozenset[str]:
    """The ids of every device in these sites (the stream's filter of a site-limited client)."""
    term, args = site_is("site", sites)
    return frozenset(row[0] for row in conn.execute(f"SELECT device_id FROM registry WHERE {term}", args))


def monitor_sources(conn: Connection) -> list[str]:
    """The source ids the monitor's own events were stored under (few: its client ids), by the type index."""
    marks = ", ".join("?" * len(MONITOR_TYPES))
    rows = conn.execute(f"SELECT DISTINCT source_id FROM events WHERE type IN ({marks})", MONITOR_TYPES)
    return sorted(row[0] for row in rows)


def site_of(conn: Connection, device_id: str) -> str | None:
    """A device's registry site (None: no registry row, or no site)."""
    row = conn.execute("SELECT site FROM registry WHERE device_id = ?", (device_id,)).fetchone()
    return None if row is None else row[0]
