"""History's reports (§13): availability by device, site, tag or day, with MTTA/MTTR; the top problems.

At fleet size a month's window overlaps about a million episodes, so the per-device sums are the database's
(fleet.py: one index range per span bracket, summed per device), and Python corrects only what needs the rules
of shared/availability.py: the fleet's few blind stretches and the few silenced devices.
"""

from __future__ import annotations

import heapq
import operator
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from functools import partial
from typing import Any

from shared import availability as av
from shared.events import iso
from shared.store import collector
from shared.store.beside import Beside
from shared.store.dialect import Connection, read
from shared.store.episodes import overlapping_sql
from shared.store.fleet import DeviceFigures, Fleet, downtime, figures, population
from shared.store.group_rows import DOWN_S, OUTAGES, group_rows
from shared.store.history_rows import registry, renumbered, scoped
from shared.store.medians import FLEET, Grouping, incident_times, medians, together

GROUPS = ("device", "site", "tag", "day")
Reads = tuple[Beside[Any], ...]  # _reads' (Downtime, IncidentTimes), read beside
Slots = dict[str, tuple[Any, ...]]  # per device, the groups it is in


def _row(key: str | None, summary: av.Group, members: Iterable[DeviceFigures]) -> dict[str, Any]:
    """A report's row: the group's summary, and the outages and time down of its members (those with any); its
    MTTA and MTTR to come (_timed)."""
    members = list(members)
    return {
        "group": key, "devices": summary.devices, "availability": summary.availability,
        "under_99": summary.under_99, "outages": sum(map(OUTAGES, members)),
        "down_s": round(sum(map(DOWN_S, members)), 3), "mtta_s": None, "mttr_s": None,
    }  # fmt: skip


def _timed(rows: list[dict[str, Any]], mtta: dict[Any, float | None], mttr: dict[Any, float | None]) -> None:
    """Each row's MTTA and MTTR, by its group."""
    for row in rows:
        row["mtta_s"], row["mttr_s"] = mtta.get(row["group"]), mttr.get(row["group"])


def _keys(fleet: Fleet, device_id: str, group_by: str) -> list[str | None]:
    """The groups a device is in: itself, its site (None: none), each of its tags (None: no tag)."""
    if group_by == "device":
        return [device_id]
    if group_by == "site":
        return [fleet.sites.get(device_id)]
    return list(fleet.tags.get(device_id, ())) or [None]


def _slots(fleet: Fleet, group_by: str) -> Slots:
    """Each device's groups (as _keys), made in one pass over the fleet (not one call per device), in its order."""
    if group_by == "site":
        return {device_id: (site,) for device_id, site in fleet.sites.items()}
    if group_by == "device":
        return {device_id: (device_id,) for device_id in fleet.first_seen}
    return {device_id: tuple(fleet.tags.get(device_id, ())) or (None,) for device_id in fleet.first_seen}


def _reads(
    window: av.Interval, sites: Sequence[str] | None, by_day: bool
) -> tuple[Callable[[Connection], Any], ...]:
    """A window's heaviest reads (each may run beside, on its own connection): its outages' downtime and times to
    end, its incidents' times to acknowledge and to end (by day: the fleet's alone, each day its own window)."""
    incidents = partial(incident_times, window=window, sites=sites, by_device=not by_day)
    return partial(downtime, window=window, sites=sites), incidents


def _window_rows(
    conn: Connection, fleet: Fleet, window: av.Interval, group_by: str, read_beside: Reads | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One window's rows by group and its fleet row. read_beside: its _reads, being read beside this thread (or
    None: read here)."""
    by_day = group_by == "day"  # each day is its own window: its fleet row is the day's row
    here = _reads(window, fleet.limited, by_day)
    down = read_beside[0].result() if read_beside else here[0](conn)
    results = figures(conn, fleet, window, down)  # while the incidents are still being read beside
    grouping = None if by_day else Grouping(_slots(fleet, group_by), lambda d: _keys(fleet, d, group_by))
    rows = [] if grouping is None else group_rows(grouping, fleet, results)
    if group_by == "device":
        for row in rows:
            row |= {"name": fleet.names.get(row["group"]), "site": fleet.sites.get(row["group"])}
    whole = _row(None, results.summary(), results.special.values())
    times = read_beside[1].result() if read_beside else here[1](conn)  # the rows made while it was read
    mtta, mttr = medians(times.acked, grouping), medians(together(down.ended, times.ended), grouping)
    _timed(rows, mtta, mttr)
    whole["mtta_s"], whole["mttr_s"] = mtta.get(FLEET), mttr.get(FLEET)
    return rows, whole


def availability_report(
    conn: Connection, start: float, end: float, now: float, group_by: str, zone: str,
    sites: Sequence[str] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Availability by device, site, tag or day over [start, min(end, now)), and the fleet's (docs/history.md).

    sites: a site-limited caller's (§14): only their devices are read, grouped and counted in the fleet's row.
    The window's outages and incidents (the most rows) are read on connections of their own, beside this one's
    reads of the fleet (beside.py).
    """
    if group_by not in GROUPS:
        raise ValueError("group_by")
    end = max(start, min(end, now))
    with read(conn), collector.held(), ExitStack() as stack:
        reads = _reads((start, end), sites, group_by == "day")
        read_beside = tuple(stack.enter_context(Beside(conn, work)) for work in reads)
        fleet = population(conn, start, end, group_by == "tag", sites)
        if group_by == "day":
            days = [(label, _window_rows(conn, fleet, window, "day")[1]) for label, window in
                    av.day_windows(start, end, zone)]  # fmt: skip
            rows = [fleet_row | {"group": label} for label, fleet_row in days]
            whole = _window_rows(conn, fleet, (start, end), "day", read_beside)[1]
        else:
            rows, whole = _window_rows(conn, fleet, (start, end), group_by, read_beside)
    return {"from": iso(start), "to": iso(end), "timezone": zone, "group_by": group_by, "rows": rows, "fleet": whole}


_SUBSYSTEMS = (
    "SELECT e.subsystem, COUNT(*),"
    " SUM((CASE WHEN COALESCE(e.ended, ?3) < ?3 THEN COALESCE(e.ended, ?3) ELSE ?3 END)"
    " - (CASE WHEN e.started > ?2 THEN e.started ELSE ?2 END))"
    " FROM ({episodes}) AS e{scope} GROUP BY e.subsystem ORDER BY 2 DESC, 3 DESC, e.subsystem LIMIT ?4"
)
# A device's time in a problem: the union of its outages and incidents in the window, summed in SQL as islands
# (each clipped episode counts the part past the furthest end reached by those before it). {only}: the devices
# that can rank (?6 …), or every one (of a site-limited caller's sites, §14: scoped from ?6).
_DEVICES = (
    "SELECT device_id, SUM(CASE WHEN kind = 'incident' THEN 1 ELSE 0 END),"
    " SUM(CASE WHEN kind = 'outage' THEN 1 ELSE 0 END),"
    " SUM(CASE WHEN reach IS NULL OR reach <= lo THEN hi - lo WHEN reach < hi THEN hi - reach ELSE 0 END)"
    " FROM (SELECT device_id, kind, lo, hi, MAX(hi) OVER (PARTITION BY device_id ORDER BY lo, hi"
    " ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reach FROM ("
    "SELECT e.device_id, e.kind, CASE WHEN e.started > ?2 THEN e.started ELSE ?2 END AS lo,"
    " CASE WHEN COALESCE(e.ended, ?3) < ?3 THEN COALESCE(e.ended, ?3) ELSE ?3 END AS hi"
    " FROM ({episodes}) AS e{only}) AS c) AS r GROUP BY device_id ORDER BY 2 DESC, 4 DESC, device_id LIMIT ?5"
)
RANKED_AT_MOST = 1000  # devices whose problem time is summed; more that could rank: all of them are


def _contenders(counts: Counter[str], limit: int) -> list[str] | None:
    """The devices that can be among the top `limit` by incidents (None: any could, or too many to list).

    Those with fewer incidents than the limit-th most cannot rank above it, whatever their problem time.
    """
    if len(counts) < limit or limit <= 0:
        return None
    least = heapq.nlargest(limit, counts.values())[-1]
    found = [device_id for device_id, n in counts.items() if n >= least]
    return found if len(found) <= RANKED_AT_MOST else None


def _devices(
    conn: Connection, episodes: str, window: av.Interval, limit: int, counts: Counter[str],
    sites: tuple[str, ...] | None,
) -> list[Any]:  # fmt: skip
    """The top devices: (device, incidents, outages, problem time), their problem time summed only for contenders
    (each one of `sites`' already, when limited: the counts are theirs)."""
    contenders = _contenders(counts, limit)
    marks = ", ".join(f"?{at}" for at in range(6, 6 + len(contenders or ())))
    only, args = (f" WHERE e.device_id IN ({marks})", list(contenders)) if contenders is not None else scoped(sites, 6)
    params = ("incident", *window, "outage", limit, *args)
    return conn.execute(_DEVICES.format(episodes=episodes, only=only), params).fetchall()


def problems(
    conn: Connection, start: float, end: float, now: float, limit: int = 10, sites: Sequence[str] | None = None
) -> dict[str, Any]:
    """The subsystems and devices with the most incidents in [start, min(end, now)), then the most problem time.

    Each device's and subsystem's incidents are counted from the window's (device, subsystem) pairs read once
    (no COUNT(DISTINCT) sort in SQL); the islands of problem time are summed only for the devices that can rank.
    sites: a site-limited caller's (§14): only their devices' episodes count.
    """
    end = max(start, min(end, now))
    limited = None if sites is None else tuple(sites)
    columns = "e.device_id, e.kind, e.subsystem, e.started, e.ended"
    incidents = overlapping_sql(columns)
    both = f"{incidents} UNION ALL {renumbered(incidents, {1: 4})}"
    where, args = scoped(limited, 4)
    pairs_sql = overlapping_sql("e.device_id, e.subsystem")
    pairs_sql = f"SELECT * FROM ({pairs_sql}) AS e{where}" if where else pairs_sql
    subsystems_sql = _SUBSYSTEMS.format(episodes=incidents, scope=scoped(limited, 5)[0])
    with read(conn):
        pairs = conn.execute(pairs_sql, ("incident", start, end, *args)).fetchall()
        subsystems = conn.execute(subsystems_sql, ("incident", start, end, limit, *args)).fetchall()
        counts = Counter(map(operator.itemgetter(0), pairs))
        devices = _devices(conn, both, (start, end), limit, counts, limited)
        entries = {d: (e.name, e.site) for d, e in registry(conn, [row[0] for row in devices]).items()}
    spread = Counter(map(operator.itemgetter(1), set(pairs)))  # per subsystem: how many devices had one
    subsystems = [(s, n, spread[s], t) for s, n, t in subsystems]
    return {
        "subsystems": [
            {"subsystem": s, "incidents": int(n), "devices": int(d), "problem_s": round(float(t or 0), 3)}
            for s, n, d, t in subsystems
        ],
        "devices": [
            {"device_id": d, "name": entries.get(d, (None, None))[0], "site": entries.get(d, (None, None))[1],
             "incidents": int(i), "outages": int(o), "problem_s": round(float(t or 0), 3)}
            for d, i, o, t in devices
        ],
    }  # fmt: skip
