"""What each row of the device list marks (§12 "The list says what is being handled"), read for one page only.

Per device: how many of its active alerts are acknowledged, silenced and unconfirmed (every alert of an
offline device is: docs/events.md), how many of its subsystems are flapping, and until when a silence
covers the device as a whole (its outage, subject ""). What a silence covers is shared/silences.py's.
"""

from __future__ import annotations

import json
from typing import Any

from shared.events import iso
from shared.silences import Silence, silenced_until
from shared.store.dialect import Connection
from shared.store.lifecycle import silences

CHUNK = 500  # ids per IN (...) list
ALERTS = (
    "SELECT device_id, subsystem, CASE WHEN ack_by IS NULL THEN 0 ELSE 1 END FROM device_alerts"
    " WHERE device_id IN ({marks})"
)
FLAPPING = "SELECT device_id, COUNT(*) FROM alert_flaps WHERE flapping = 1 AND device_id IN ({marks}) GROUP BY 1"
Marks = dict[str, dict[str, Any]]


def _blank(row: tuple[Any, ...]) -> dict[str, Any]:
    """A row's markers before its alerts are read: unconfirmed are all the alerts of an offline device."""
    offline = row[3] == "offline"
    return {"acknowledged": 0, "flapping": 0, "silenced": 0, "unconfirmed": row[8] if offline else 0,
            "silenced_until": None}  # fmt: skip


def page_markers(conn: Connection, rows: list[tuple[Any, ...]], now: float) -> Marks:
    """Each row's markers by device id: two reads by primary key over the page's ids, and the active silences."""
    marks = {row[0]: _blank(row) for row in rows}
    ids = list(marks)
    alerts: list[tuple[str, str, int]] = []
    for start in range(0, len(ids), CHUNK):  # in the caller's transaction, if any (a device's page reads in a write)
        chunk = ids[start : start + CHUNK]
        places = ", ".join("?" * len(chunk))
        alerts += conn.execute(ALERTS.format(marks=places), chunk).fetchall()
        for device_id, flapping in conn.execute(FLAPPING.format(marks=places), chunk):
            marks[device_id]["flapping"] = int(flapping)
    active = [s for s in silences(conn, now) if s.active(now)] if ids else []
    for device_id, _, acked in alerts:
        marks[device_id]["acknowledged"] += acked
    if active:
        _silenced(marks, rows, alerts, active, now)
    return marks


def _silenced(marks: Marks, rows: list[tuple[Any, ...]], alerts: list[tuple[str, str, int]],
              active: list[Silence], now: float) -> None:  # fmt: skip
    """Fill in what the active silences cover: each alert, and the device as a whole (until when)."""
    places = {row[0]: (set(json.loads(row[11])), row[10]) for row in rows}  # tags, site
    for device_id, subsystem, _ in alerts:
        tags, site = places[device_id]
        if silenced_until(active, device_id, subsystem, tags, now, site) is not None:
            marks[device_id]["silenced"] += 1
    for device_id, (tags, site) in places.items():
        marks[device_id]["silenced_until"] = iso(silenced_until(active, device_id, "", tags, now, site))


def markers_json(marks: dict[str, Any] | None) -> str:
    """A row's markers as JSON (null when the listing read none: a single device's GET)."""
    return "null" if marks is None else json.dumps(marks, separators=(",", ":"))
