"""The device list at fleet scale (§7): filters, sort orders with keyset cursors, the count, the summary.

Each sort order is an index (schema migrations 5 and 9), so a page reads about as many rows as it shows at
any depth; the cursor is the last row's sort key, so devices added or removed while an operator pages
neither repeat nor push others off the end. sort=name walks the registry's name index for the named devices,
then the devices' ids for the unnamed ones. `q` of 3 or more characters first asks its trigram index
(search.py) for the candidates: up to COUNT_CAP of them are read by id and sorted; with more (a common q), or
with a q of 1 or 2 characters, q filters the walk of the sort's index, whose first page stops at the page's last
match. Either way the exact LIKE decides, and q's count stops at COUNT_CAP matches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from shared.severity import HEALTH_ORDER, standing_sql
from shared.store import scope, search
from shared.store.device_rows import DEVICE_FROM, DEVICE_SELECT, WIDTH
from shared.store.dialect import Connection, caseless_like, read

HEALTH = standing_sql("d.liveness", "d.worst_rank")  # sort=severity and the health filter: the index devices_health
COUNT_CAP = 1000  # with q, the count stops here: X-Total-Count then says "at least" (X-Total-Count-Capped)
SUMMARY_TOP = 50  # the summary's sites, tags and firmware versions: the largest this many, and how many in all
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
    firmware: str | None = None
    sort: str = "id"
    limit: int | None = None
    after: tuple[Any, ...] | None = None
    sites: tuple[str, ...] | None = None  # a site-limited caller's (§14): its devices only; None: every device


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _q_terms(q: str, like: str, found: list[str] | None) -> tuple[list[str], list[Any]]:
    """q's exact LIKE over the fields; before it, when its index gave them, the candidates' ids."""
    fields = ["d.id", "r.name", "r.site"] + (["r.tags"] if TAG_TEXT.fullmatch(q.lower()) else [])
    where = ["(" + " OR ".join(f"{f} {like} ? ESCAPE '\\'" for f in fields) + ")"]
    args: list[Any] = [_like(q)] * len(fields)
    if found is None:
        return where, args
    return [f"d.id IN ({', '.join('?' * len(found))})" if found else "1 = 0"] + where, found + args


def _filters(query: DeviceQuery, like: str, found: list[str] | None = None) -> tuple[list[str], list[Any]]:
    """The WHERE terms and arguments of the query's filters (not its cursor); `found`: q's candidates, if any."""
    where: list[str] = []
    args: list[Any] = []
    if query.q:
        where, args = _q_terms(query.q, like, found)
    if query.health:
        term, health_args = _health(query.health)
        where.append(term)
        args += health_args
    for tag in query.tags:
        where.append("d.id IN (SELECT device_id FROM device_tags WHERE tag = ?)")
        args.append(tag)
    if query.site is not None:
        where.append("r.site = ?")
        args.append(query.site)
    if query.firmware is not None:
        where.append("d.firmware = ?")
        args.append(query.firmware)
    if query.sites is not None:
        term, site_args = scope.site_is("r.site", query.sites)
        where.append(term)
        args += site_args
    return where, args


def _health(wanted: tuple[str, ...]) -> tuple[str, list[Any]]:
    """The health filter: a device's standing (its worst alert's, §12), or for "offline" every offline device."""
    places = [HEALTH_ORDER.index(h) for h in wanted if h != "offline"]
    terms = [f"{HEALTH} IN ({', '.join('?' * len(places))})"] if places else []
    if "offline" in wanted:
        terms.append("d.liveness = 'offline'")
    return "(" + " OR ".join(terms) + ")", places


def _clause(where: list[str]) -> str:
    return " WHERE " + " AND ".join(where) if where else ""


Range = tuple[str, list[Any], tuple[str, ...]]  # a WHERE term, its arguments, the keys left to order by
Walk = tuple[str, str, list[Any], tuple[str, ...]]  # a FROM, then a Range: one index read of a page
NAMED = " FROM registry r JOIN devices d ON d.id = r.device_id"  # sort=name's named devices: registry_name first
NAME_KEYS = ("lower(r.name)", "r.device_id")


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


def _narrowed(source: str, term: str, ranges: list[Range]) -> list[Walk]:
    return [(source, f"{term} AND {t}", a, order) for t, a, order in ranges]


def _name_walks(after: tuple[Any, ...] | None) -> list[Walk]:
    """sort=name (unnamed last, then by lower(name), then id): the named by registry_name, then the rest by id."""
    named: Walk = (NAMED, "r.name IS NOT NULL", [], NAME_KEYS)
    unnamed: Walk = (DEVICE_FROM, "r.name IS NULL", [], ("d.id",))
    if after is None:
        return [named, unnamed]
    group = after[0]  # the key's first part: 0 named, 1 unnamed (any other value comes from a hand-made cursor)
    if isinstance(group, str) or group > 1:
        return []
    if group == 1:
        return _narrowed(DEVICE_FROM, unnamed[1], _after(("d.id",), after[2:], False))
    if group == 0:
        return _narrowed(NAMED, named[1], _after(NAME_KEYS, after[1:], False)) + [unnamed]
    return [named, unnamed] if group < 0 else [unnamed]


def _walks(query: DeviceQuery) -> list[Walk]:
    """The index reads of a page, in order, read until it is full."""
    if query.sort == "name":
        return _name_walks(query.after)
    keys, descending = SORTS[query.sort]
    if query.after is None:
        return [(DEVICE_FROM, "", [], keys)]
    return [(DEVICE_FROM, term, args, order) for term, args, order in _after(keys, query.after, descending)]


def list_devices(conn: Connection, query: DeviceQuery) -> tuple[list[tuple[Any, ...]], int]:
    """Up to limit + 1 rows in the query's order, each with its sort key after the device columns; how many match.

    With q the count stops past COUNT_CAP (count_headers says so).
    """
    keys, descending = SORTS[query.sort]
    like = caseless_like(conn)
    direction = " DESC" if descending else ""
    # A row-value comparison would not use the index; each walk does, read until the page is full.
    wanted = None if query.limit is None else query.limit + 1
    rows: list[tuple[Any, ...]] = []
    with read(conn):
        found = search.candidates(conn, query.q, _like(query.q), COUNT_CAP) if query.q else None
        where, args = _filters(query, like, found)
        for source, term, term_args, order in _walks(query):
            sql = f"{DEVICE_SELECT}, {', '.join(keys)}{source}" + _clause(where + [term] if term else where)
            sql += " ORDER BY " + ", ".join(k + direction for k in order)
            if wanted is not None:
                sql += f" LIMIT {wanted - len(rows)}"
            rows += conn.execute(sql, args + term_args).fetchall()
            if wanted is not None and len(rows) >= wanted:
                break
        whole = query.after is None and (wanted is None or len(rows) < wanted)
        total = len(rows) if whole else _count(conn, query, where, args)
    return rows, total


def _count(conn: Connection, query: DeviceQuery, where: list[str], args: list[Any]) -> int:
    """How many devices match (the registry joined only when a filter reads it: the join costs a scan).

    With q (unless its index gave the candidates) every row may be read: the count stops at COUNT_CAP + 1.
    """
    source = DEVICE_FROM if query.q or query.site is not None or query.sites is not None else " FROM devices d"
    if query.q:
        sql = f"SELECT COUNT(*) FROM (SELECT 1{source}{_clause(where)} LIMIT {COUNT_CAP + 1}) AS matches"
    else:
        sql = "SELECT COUNT(*)" + source + _clause(where)
    return int(conn.execute(sql, args).fetchone()[0])


def count_headers(query: DeviceQuery, total: int) -> dict[str, str]:
    """X-Total-Count, and X-Total-Count-Capped: true when q's count stopped at COUNT_CAP (at least that many)."""
    if query.q and total > COUNT_CAP:
        return {"X-Total-Count": str(COUNT_CAP), "X-Total-Count-Capped": "true"}
    return {"X-Total-Count": str(total)}


def sort_key(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """The sort key list_devices put after a row's device columns (what a cursor carries)."""
    return tuple(row[WIDTH:])


def _top(counts: list[tuple[str, int]], name: str) -> dict[str, Any]:
    """The SUMMARY_TOP largest (ties by name) as {value: count}, and how many values there are in all."""
    top = sorted(counts, key=lambda c: (-c[1], c[0]))[:SUMMARY_TOP]
    return {name: dict(top), f"{name}_total": len(counts)}


def summary(conn: Connection, sites: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The fleet's counts (or `sites`' devices'): devices, by health (every health, zeros included), the largest
    tags, sites and firmware.

    A device counts in its standing's chip (its worst alert's) and, when offline, in "offline" as well (§12).
    """
    with read(conn):
        devices, by_place, offline, tags, sites_, firmware = (
            _fleet_counts(conn) if sites is None else _site_counts(conn, sites)
        )
    by_health = {name: by_place.get(place, 0) for place, name in enumerate(HEALTH_ORDER)}
    by_health["offline"] = offline
    return {"devices": devices, "health": by_health, **_top(tags, "tags"), **_top(sites_, "sites"),
            **_top(firmware, "firmware")}  # fmt: skip


Counts = tuple[int, dict[int, int], int, list[Any], list[Any], list[Any]]


def _fleet_counts(conn: Connection) -> Counts:
    # Counted by index range, all but ok, which is the rest: a healthy fleet's count reads few entries.
    devices = conn.execute("SELECT COUNT(*) FROM devices").fetchone()[0]
    ok = HEALTH_ORDER.index("ok")
    by_place = dict(conn.execute(f"SELECT {HEALTH}, COUNT(*) FROM devices d WHERE {HEALTH} < ? GROUP BY 1", (ok,)))
    by_place[ok] = devices - sum(by_place.values())
    offline = conn.execute("SELECT COUNT(*) FROM devices WHERE liveness = 'offline'").fetchone()[0]
    tags = conn.execute("SELECT tag, n FROM tag_counts WHERE n > 0").fetchall()
    sites = conn.execute("SELECT site, COUNT(*) FROM registry WHERE site IS NOT NULL GROUP BY site").fetchall()
    firmware = conn.execute("SELECT firmware, COUNT(*) FROM devices WHERE firmware IS NOT NULL GROUP BY firmware")
    return devices, by_place, offline, tags, sites, firmware.fetchall()


def _site_counts(conn: Connection, sites: tuple[str, ...]) -> Counts:
    """The same counts over these sites' devices only, each read by the registry's site index."""
    term, args = scope.site_is("r.site", sites)
    mine = f" FROM registry r JOIN devices d ON d.id = r.device_id WHERE {term}"
    devices = conn.execute(f"SELECT COUNT(*){mine}", args).fetchone()[0]
    by_place = dict(conn.execute(f"SELECT {HEALTH}, COUNT(*){mine} GROUP BY 1", args).fetchall())
    offline = conn.execute(f"SELECT COUNT(*){mine} AND d.liveness = 'offline'", args).fetchone()[0]
    tags = conn.execute(
        f"SELECT t.tag, COUNT(*) FROM registry r JOIN device_tags t ON t.device_id = r.device_id WHERE {term}"
        " GROUP BY t.tag", args
    ).fetchall()
    by_site = conn.execute(f"SELECT r.site, COUNT(*) FROM registry r WHERE {term} GROUP BY r.site", args).fetchall()
    firmware = conn.execute(f"SELECT d.firmware, COUNT(*){mine} AND d.firmware IS NOT NULL GROUP BY 1", args)
    return devices, by_place, offline, tags, by_site, firmware.fetchall()
