"""History's reads for a device and for the incident list (§13); the reports are reports.py's.

A device's history reads its own episodes by the episodes_device index (a few hundred rows over the kept
year) and asks shared/availability.py for the arithmetic. The incident list pages newest start first (then id) with an
opaque cursor (the last row's start and id), so rows written while an operator pages neither repeat nor go missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared import availability as av
from shared.events import iso
from shared.store import scope
from shared.store.dialect import Connection, read
from shared.store.episodes import history_since, newest_sql
from shared.store.history_rows import (
    EPISODE,
    Silences,
    blind,
    episode_dict,
    episode_silenced,
    registry,
)
from shared.store.reports import availability_report, problems

__all__ = ["availability_report", "device_history", "incidents", "problems"]

DAY_S = 86400.0
PERIODS = {"24h": DAY_S, "7d": 7 * DAY_S, "30d": 30 * DAY_S, "90d": 90 * DAY_S}
KINDS = ("outage", "incident")  # what a device's history and the incident list show unless asked for "blind"
FEW_DEVICES = 50  # a site-limited caller's list reads each of its devices by its index when it has at most this many


def _device_episodes(conn: Connection, device_id: str, start: float, end: float) -> list[tuple[Any, ...]]:
    """The device's outages and incidents overlapping [start, end), newest first."""
    return conn.execute(
        f"SELECT {EPISODE} FROM episodes e WHERE e.device_id = ? AND e.started < ? AND e.kind IN ('outage', 'incident')"
        " AND (e.ended IS NULL OR e.ended > ?) ORDER BY e.started DESC, e.id DESC",
        (device_id, end, start),
    ).fetchall()


def _availability(
    window: av.Interval, rows: list[tuple[Any, ...]], fleet_blind: list[av.Interval], quiet: list[av.Interval],
    known: float, now: float,
) -> av.Availability:  # fmt: skip
    outages = [(r[4], r[5] if r[5] is not None else now) for r in rows if r[1] == "outage"]
    return av.availability(window, outages, fleet_blind, quiet, known)


def device_history(
    conn: Connection, device_id: str, start: float, end: float, now: float, limit: int = 1000,
    sites: Sequence[str] | None = None,
) -> dict[str, Any] | None:  # fmt: skip
    """A device's availability over [start, min(end, now)), its 24 h … 90 d figures, its episodes (None: unknown,
    or not of `sites`, a site-limited caller's, §14: the same None as a device that does not exist)."""
    with read(conn):
        row = conn.execute("SELECT first_seen FROM devices WHERE id = ?", (device_id,)).fetchone()
        if row is None or (sites is not None and scope.site_of(conn, device_id) not in sites):
            return None
        end = min(end, now)
        earliest = min(start, now - PERIODS["90d"])
        since = history_since(conn)
        rows = _device_episodes(conn, device_id, earliest, max(end, now))
        fleet_blind = blind(conn, earliest, now)
        silences = Silences(conn, min([earliest, *(r[4] for r in rows)]), now)  # those over its episodes' whole time
        entries = registry(conn, [device_id])
    known = av.known_from(row[0], since)
    quiet = silences.covering(device_id, "", entries.get(device_id))
    window = (start, max(start, end))
    shown = [r for r in rows if r[4] < window[1] and (r[5] is None or r[5] > window[0])]
    figures = _availability(window, rows, fleet_blind, quiet, known, now)
    periods = {
        name: _availability((now - length, now), rows, fleet_blind, quiet, known, now).ratio
        for name, length in PERIODS.items()
    }
    return {
        "device_id": device_id, "from": iso(window[0]), "to": iso(window[1]), "history_since": iso(since),
        "availability": {
            "ratio": figures.ratio, "down_s": figures.down_s, "counted_s": figures.counted_s,
            "unknown_s": figures.unknown_s, "silenced_s": figures.silenced_s,
            "outages": sum(1 for r in shown if r[1] == "outage"),
            "incidents": sum(1 for r in shown if r[1] == "incident"),
        },
        "periods": periods,
        "episodes": [episode_dict(r, now, episode_silenced(r, silences, entries, now)) for r in shown[:limit]],
        "truncated": len(shown) > limit,
    }  # fmt: skip


def _filters(
    device: str | None, site: str | None, tag: str | None, subsystem: str | None, state: str | None,
    is_open: bool | None, sites: tuple[str, ...] | None,
) -> tuple[list[str], list[Any]]:  # fmt: skip
    """The incident list's filters as WHERE terms and their arguments (sites: only these sites' devices)."""
    terms: list[tuple[Any, str]] = [
        (device, "e.device_id = ?"),
        (site, "e.device_id IN (SELECT device_id FROM registry WHERE site = ?)"),
        (tag, "e.device_id IN (SELECT device_id FROM device_tags WHERE tag = ?)"),
        (subsystem, "e.subsystem = ?"),
        (state, "e.worst = ?"),
    ]
    where = [sql for value, sql in terms if value is not None]
    args = [value for value, _ in terms if value is not None]
    if sites is not None:
        term, site_args = scope.device_in("e.device_id", sites)
        where.append(term)
        args += site_args
    if is_open is not None:
        where.append("e.ended IS NULL" if is_open else "e.ended IS NOT NULL")
    return where, args


def _cursor(cursor: str | None) -> tuple[float, int] | None:
    """The (started, id) a cursor carries (the last row shown); a cursor that is not one is a ValueError."""
    if cursor is None:
        return None
    started, _, last = cursor.partition("_")
    if not last.isdigit():
        raise ValueError("cursor")
    return float(started), int(last)


def incidents(
    conn: Connection, start: float, end: float, now: float, *, device: str | None = None, site: str | None = None,
    tag: str | None = None, subsystem: str | None = None, state: str | None = None, open: bool | None = None,
    kind: str | None = None, limit: int = 100, cursor: str | None = None, sites: Sequence[str] | None = None,
) -> tuple[list[dict[str, Any]], str | None]:  # fmt: skip
    """Episodes overlapping [start, min(end, now)), newest start first, and the cursor of the next page (or None).

    kind None: outages and incidents; "blind": the monitor's own unknown stretches (of no device: shown to a
    caller limited to `sites` too, §14, whose outages and incidents are only its sites' devices').
    A bad cursor: ValueError.
    One device's are read by its index (so are a few devices' each, a site-limited caller's: FEW_DEVICES);
    otherwise each kind's span brackets are walked from their newest end (episodes.newest_sql), so a first page
    costs about the same for any window at any fleet size.
    """
    end = min(end, now)
    after = _cursor(cursor)
    limited = None if sites is None or kind == "blind" else tuple(sites)
    where, args = _filters(device, site, tag, subsystem, state, open, limited)
    kinds = KINDS if kind is None else (kind,)
    with read(conn):
        few = None if limited is None or device is not None else scope.device_ids(conn, limited)
        if device is not None or (few is not None and len(few) <= FEW_DEVICES):
            rows = _by_device(conn, kinds, (start, end), limit + 1, after, (where, args), few)
        else:
            sql, params = newest_sql(kinds, start, end, limit + 1, after, where, args, EPISODE)
            rows = conn.execute(sql, params).fetchall()
        page = rows[:limit]
        silences = Silences(conn, min((r[4] for r in page), default=now), now)
        entries = registry(conn, [r[2] for r in page])
    out = [episode_dict(r, now, episode_silenced(r, silences, entries, now)) for r in page]
    more = len(rows) > limit
    return out, (f"{page[-1][4]!r}_{page[-1][0]}" if more else None)


def _by_device(
    conn: Connection, kinds: tuple[str, ...], window: tuple[float, float], limit: int,
    after: tuple[float, int] | None, filters: tuple[list[str], list[Any]], few: frozenset[str] | None,
) -> list[tuple[Any, ...]]:  # fmt: skip
    """The page of one device (few None: its filter among `filters`) or of each of a few, merged newest first."""
    where, args = filters
    if few is None:
        return _one_device(conn, kinds, *window, limit, after, where, args)
    rows: list[tuple[Any, ...]] = []
    for device_id in sorted(few):
        rows += _one_device(conn, kinds, *window, limit, after, [*where, "e.device_id = ?"], [*args, device_id])
    return sorted(rows, key=lambda row: (row[4], row[0]), reverse=True)[:limit]


def _one_device(
    conn: Connection, kinds: tuple[str, ...], start: float, end: float, limit: int, after: tuple[float, int] | None,
    where: list[str], args: list[Any],
) -> list[tuple[Any, ...]]:  # fmt: skip
    """One device's page (its filter among `where`), by the episodes_device index."""
    terms = [*where, f"e.kind IN ({', '.join('?' * len(kinds))})", "e.started < ?", "(e.ended IS NULL OR e.ended > ?)"]
    params = [*args, *kinds, end, start]
    if after is not None:
        terms += ["e.started <= ?", "(e.started < ? OR e.id < ?)"]
        params += [after[0], after[0], after[1]]
    return conn.execute(
        f"SELECT {EPISODE} FROM episodes e WHERE {' AND '.join(terms)} ORDER BY e.started DESC, e.id DESC LIMIT ?",
        (*params, limit),
    ).fetchall()
