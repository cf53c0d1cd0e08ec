"""The device list at fleet scale (§7): filters, sort orders with keyset cursors, the count, the summary.

Each sort order is an index (schema migration 5), so a page reads about as many rows as it shows at
any depth; the cursor is the last row's sort key, so devices added or removed while an operator pages
neither repeat nor push others off the end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from shared.severity import HEALTH_ORDER, health_sql
from shared.store.device_rows import DEVICE_FROM, DEVICE_SELECT, WIDTH
from shared.store.dialect import Connection, caseless_like, read

HEALTH = health_sql("d.liveness", "d.worst_rank")
# Each sort: its key expressions (the last is always the id, so keys are unique) and whether descending.
SORTS: dict[str, tuple[tuple[str, ...], bool]] = {
    "id": (("d.id",), False),
    "severity": ((HEALTH, "d.id"), False),
    "name": (("CASE WHEN r.name IS NULL THEN 1 ELSE 0 END", "COALESCE(lower(r.name), '')", "d.id"), False),
    "last_seen": (("COALESCE(d.last_seen, 0)", "d.id"), False),
    "-last_seen": (("COALESCE(d.last_seen, 0)", "d.id"), True),
}
TAG_TEXT = re.compile(r"[a-z0-9_.:-]+")


@dataclass(frozen=True)
class DeviceQuery:
    """What an operator asked of the device list; `after` is the sort key of the last row already shown."""

    q: str | None = None
    health: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    site: str | None = None
    sort: str = "id"
    limit: int | None = None
    after: tuple[Any, ...] | None = None


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _filters(query: DeviceQuery, like: str) -> tuple[list[str], list[Any]]:
    """The WHERE terms and arguments of the query's filters (not its cursor)."""
    where: list[str] = []
    args: list[Any] = []
    if query.q:
        fields = ["d.id", "r.name", "r.site"] + (["r.tags"] if TAG_TEXT.fullmatch(query.q.lower()) else [])
        where.append("(" + " OR ".join(f"{f} {like} ? ESCAPE '\\'" for f in fields) + ")")
        args += [_like(query.q)] * len(fields)
    if query.health:
        where.append(f"{HEALTH} IN ({', '.join('?' * len(query.health))})")
        args += [HEALTH_ORDER.index(h) for h in query.health]
    for tag in query.tags:
        where.append("d.id IN (SELECT device_id FROM device_tags WHERE tag = ?)")
        args.append(tag)
    if query.site is not None:
        where.append("r.site = ?")
        args.append(query.site)
    return where, args


def _clause(where: list[str]) -> str:
    return " WHERE " + " AND ".join(where) if where else ""


Range = tuple[str, list[Any], tuple[str, ...]]  # a WHERE term, its arguments, the keys left to order by


def _after(keys: tuple[str, ...], after: tuple[Any, ...], descending: bool) -> list[Range]:
    """The rows past a sort key as index ranges, nearest first: equal on the leading keys, past on the next."""
    past = "<" if descending else ">"
    ranges = []
    for n in range(len(keys), 0, -1):
        # Each key in parentheses: "r.name IS NULL > ?" would read as "r.name IS (NULL > ?)".
        terms = [f"({key}) = ?" for key in keys[: n - 1]] + [f"({keys[n - 1]}) {past} ?"]
        # Ordered by the keys not pinned by "=": SQLite would sort a large tie in a temporary b-tree otherwise.
        ranges.append((" AND ".join(terms), list(after[:n]), keys[n - 1 :]))
    return ranges


def list_devices(conn: Connection, query: DeviceQuery) -> tuple[list[tuple[Any, ...]], int]:
    """Up to limit + 1 rows in the query's order, each with its sort key after the device columns; how many match."""
    keys, descending = SORTS[query.sort]
    where, args = _filters(query, caseless_like(conn))
    direction = " DESC" if descending else ""
    select = f"{DEVICE_SELECT}, {', '.join(keys)}{DEVICE_FROM}"
    # A row-value comparison would not use the index; each range of _after does, read until the page is full.
    ranges: list[Range] = [("", [], keys)] if query.after is None else _after(keys, query.after, descending)
    wanted = None if query.limit is None else query.limit + 1
    rows: list[tuple[Any, ...]] = []
    with read(conn):
        for term, term_args, order in ranges:
            sql = select + _clause(where + [term] if term else where) + " ORDER BY "
            sql += ", ".join(k + direction for k in order)
            if wanted is not None:
                sql += f" LIMIT {wanted - len(rows)}"
            rows += conn.execute(sql, args + term_args).fetchall()
            if wanted is not None and len(rows) >= wanted:
                break
        whole = query.after is None and (wanted is None or len(rows) < wanted)
        total = len(rows) if whole else _count(conn, query, where, args)
    return rows, total


def _count(conn: Connection, query: DeviceQuery, where: list[str], args: list[Any]) -> int:
    """How many devices match (the registry joined only when a filter reads it: the join costs a scan)."""
    source = DEVICE_FROM if query.q or query.site is not None else " FROM devices d"
    return int(conn.execute("SELECT COUNT(*)" + source + _clause(where), args).fetchone()[0])


def sort_key(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """The sort key list_devices put after a row's device columns (what a cursor carries)."""
    return tuple(row[WIDTH:])


def summary(conn: Connection) -> dict[str, Any]:
    """The fleet's counts: devices, by health (every health, zeros included), by tag and by site."""
    with read(conn):
        # Counted by index range, all but ok, which is the rest: a healthy fleet's count reads few entries.
        devices = conn.execute("SELECT COUNT(*) FROM devices").fetchone()[0]
        ok = HEALTH_ORDER.index("ok")
        by_place = dict(conn.execute(f"SELECT {HEALTH}, COUNT(*) FROM devices d WHERE {HEALTH} < ? GROUP BY 1", (ok,)))
        by_place[ok] = devices - sum(by_place.values())
        tags = dict(conn.execute("SELECT tag, n FROM tag_counts WHERE n > 0 ORDER BY tag").fetchall())
        sites = dict(
            conn.execute("SELECT site, COUNT(*) FROM registry WHERE site IS NOT NULL GROUP BY site ORDER BY site")
        )
    by_health = {name: by_place.get(place, 0) for place, name in enumerate(HEALTH_ORDER)}
    return {"devices": devices, "health": by_health, "tags": tags, "sites": sites}
