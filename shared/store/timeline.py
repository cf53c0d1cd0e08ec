"""The timeline's read (§12): a page of events by type, severity, device, site and tag, forward or back by id.

Events are kept for days (millions of rows at fleet size), so a page reads about as many rows as it shows:
each page is driven by one index and reads at most `limit` entries of each of its index prefixes
(events_type for a type filter, events_severity for severity, events_source for a device or a site/tag
of few devices, the id itself otherwise); the other filters are checked on the rows it reaches. A site-limited
caller's page (§14, scope.py) is read by its sites' devices and the monitor's sources when they are few.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from shared.events import event_dict
from shared.store import scope
from shared.store.dialect import Connection
from shared.vocabulary import EVENT_TYPES

COLUMNS = "id, ts, type, severity, source_id, payload"
FEW_SOURCES = 200  # a site or tag of at most this many devices is read device by device (events_source)
SITE_IDS = "SELECT device_id FROM registry WHERE site = ?"
TAG_IDS = "SELECT device_id FROM device_tags WHERE tag = ?"


@dataclass(frozen=True)
class Timeline:
    """Which events a page shows: after an id (oldest first) or the newest before one; None means any."""

    limit: int = 100
    after: int | None = None  # the first `limit` events with a greater id (the live tail, scripts)
    before: int | None = None  # only events with a smaller id; without `after`: the newest `limit` of them
    types: frozenset[str] | None = None
    severities: frozenset[str] | None = None
    device: str | None = None
    site: str | None = None
    tag: str | None = None
    sites: tuple[str, ...] | None = None  # a site-limited caller's (§14): its devices' events and the monitor's


def kept_types(page: Timeline) -> frozenset[str] | None:
    """The types a page can show: its own, less those whose fixed severity it does not ask for (None: any)."""
    if page.types is None or page.severities is None:
        return page.types
    return frozenset(t for t in page.types if not _fixed(t) or _fixed(t) in page.severities)


def _fixed(kind: str) -> str:
    """A type's one severity, or "" when its events decide (an alert, by its state) or it is not in the table."""
    event = EVENT_TYPES.get(kind)
    return event.severity if event else ""


def _in(column: str, values: frozenset[str]) -> tuple[str, list[Any]]:
    ordered = sorted(values)
    return f"{column} IN ({', '.join('?' * len(ordered))})", list(ordered)


def _conditions(page: Timeline, types: frozenset[str] | None, driver: str) -> tuple[list[str], list[Any]]:
    """The page's row conditions, less the one its driving index already applies."""
    where: list[str] = []
    args: list[Any] = []
    if page.after is not None:
        where.append("id > ?")
        args.append(page.after)
    if page.before is not None:
        where.append("id < ?")
        args.append(page.before)
    parts: list[tuple[str, tuple[str, list[Any]] | None]] = [
        ("type", _in("type", types) if types is not None else None),
        ("severity", _in("severity", page.severities) if page.severities is not None else None),
        ("source_id", ("source_id = ?", [page.device]) if page.device is not None else None),
        ("site", (f"source_id IN ({SITE_IDS})", [page.site]) if page.site is not None else None),
        ("tag", (f"source_id IN ({TAG_IDS})", [page.tag]) if page.tag is not None else None),
    ]
    for column, part in parts:
        by_ids = driver == "source_id" and page.device is None and column in ("site", "tag")  # the ids are theirs
        if part is not None and column != driver and not by_ids:
            where.append(part[0])
            args += part[1]
    if page.sites is not None:  # always: the ids of a scoped driver include the monitor's sources
        term, scope_args = scope.event_in(page.sites)
        where.append(term)
        args += scope_args
    return where, args


def _few_sources(conn: Connection, page: Timeline) -> list[str] | None:
    """The device ids of a site/tag filter when they are few (None when many or no such filter)."""
    if page.device is not None:
        return [page.device]
    if page.site is None and page.tag is None:
        return None if page.sites is None else _scope_sources(conn, page.sites)
    if page.site is None:
        sql, args = TAG_IDS, [page.tag]
    elif page.tag is None:
        sql, args = SITE_IDS, [page.site]
    else:
        sql, args = f"{SITE_IDS} AND device_id IN ({TAG_IDS})", [page.site, page.tag]
    ids = [row[0] for row in conn.execute(f"{sql} LIMIT ?", (*args, FEW_SOURCES + 1)).fetchall()]
    return ids if len(ids) <= FEW_SOURCES else None


def _scope_sources(conn: Connection, sites: tuple[str, ...]) -> list[str] | None:
    """A site-limited page's sources when its devices are few: theirs and the monitor's own (None when many)."""
    term, args = scope.site_is("site", sites)
    sql = f"SELECT device_id FROM registry WHERE {term} LIMIT ?"
    ids = [row[0] for row in conn.execute(sql, (*args, FEW_SOURCES + 1)).fetchall()]
    return ids + scope.monitor_sources(conn) if len(ids) <= FEW_SOURCES else None


def _driver(conn: Connection, page: Timeline, types: frozenset[str] | None) -> tuple[str, list[str]]:
    """The index a page is read by: its column and the values each read one prefix of ("" and []: by id)."""
    sources = _few_sources(conn, page)
    if sources is not None:
        return "source_id", sources
    if types is not None:
        return "type", sorted(types)
    if page.severities is not None:
        return "severity", sorted(page.severities)
    return "", []


def _ids_sql(page: Timeline, column: str, values: list[str], where: list[str], args: list[Any]) -> tuple[str, list]:
    """The statement of the page's ids: one ordered, limited read per index prefix, merged."""
    order = "ASC" if page.after is not None else "DESC"
    if not column:
        sql = f"SELECT id FROM events{' WHERE ' + ' AND '.join(where) if where else ''} ORDER BY id {order} LIMIT ?"
        return sql, [*args, page.limit]
    terms, params = [], []
    for n, value in enumerate(values):
        conds = " AND ".join([f"{column} = ?", *where])
        terms.append(f"SELECT id FROM (SELECT id FROM events WHERE {conds} ORDER BY id {order} LIMIT ?) AS t{n}")
        params += [value, *args, page.limit]
    if len(terms) == 1:
        return terms[0], params
    return f"SELECT id FROM ({' UNION ALL '.join(terms)}) AS u ORDER BY id {order} LIMIT ?", [*params, page.limit]


def timeline(conn: Connection, page: Timeline) -> list[dict[str, Any]]:
    """One page of stored events in wire form, oldest first (docs/events.md#reading-the-timeline)."""
    types = kept_types(page)
    if types is not None and not types:
        return []
    column, values = _driver(conn, page, types)
    if column == "source_id" and not values:
        return []
    where, args = _conditions(page, types, column)
    ids_sql, params = _ids_sql(page, column, values, where, args)
    rows = conn.execute(f"SELECT {COLUMNS} FROM events WHERE id IN ({ids_sql}) ORDER BY id", params).fetchall()
    return [event_dict(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]
