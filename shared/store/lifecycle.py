"""The alert lifecycle's tables (§9): acknowledgements on active alerts, silences, and each alert's full object."""

from __future__ import annotations

import json
from typing import Any

from shared.events import iso
from shared.severity import ALERT_SEVERITY, rank_sql
from shared.silences import Silence, silenced_until
from shared.store.dialect import Connection

_SILENCE = (
    "SELECT id, device_id, tag, subsystem, starts_at, ends_at, comment, created_by, created_at, site, device_ids"
    " FROM silences"
)


def _silence(row: tuple[Any, ...]) -> Silence:
    """A stored row as a Silence (device_ids: a JSON array, read once into a frozenset)."""
    ids = row[10]
    return Silence(*row[:10], device_ids=None if ids is None else frozenset(json.loads(ids)))


def add_silence(conn: Connection, silence: Silence) -> int:
    """The web's: store a new silence; returns its id."""
    cur = conn.execute(
        "INSERT INTO silences (device_id, tag, subsystem, starts_at, ends_at, comment, created_by, created_at,"
        " site, device_ids) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (silence.device_id, silence.tag, silence.subsystem, silence.starts_at, silence.ends_at,
         silence.comment, silence.created_by, silence.created_at, silence.site,
         None if silence.device_ids is None else json.dumps(sorted(silence.device_ids))),
    )  # fmt: skip
    return int(cur.fetchone()[0])


def expire_silence(conn: Connection, silence_id: int, now: float, by: str | None = None) -> bool:
    """The web's DELETE: a silence not yet over ends now, `by` whom (its silence_ended says); False if none such."""
    cur = conn.execute(
        "UPDATE silences SET ends_at = ?, ended_by = ? WHERE id = ? AND ends_at > ?", (now, by, silence_id, now)
    )
    return cur.rowcount == 1


def silences(conn: Connection, now: float) -> list[Silence]:
    """Silences active or still to come, soonest end first."""
    rows = conn.execute(_SILENCE + " WHERE ends_at > ? ORDER BY ends_at, id", (now,)).fetchall()
    return [_silence(row) for row in rows]


def silences_between(conn: Connection, start: float, end: float) -> list[Silence]:
    """Silences that overlapped [start, end) (history's reads: a past maintenance window is left out, §13)."""
    rows = conn.execute(_SILENCE + " WHERE ends_at > ? AND starts_at < ? ORDER BY id", (start, end)).fetchall()
    return [_silence(row) for row in rows]


def prune_silences(conn: Connection, before: float) -> int:
    """Drop silences that ended before `before`."""
    return conn.execute("DELETE FROM silences WHERE ends_at < ?", (before,)).rowcount


def acknowledge(conn: Connection, device_id: str, subsystem: str, by: str, note: str | None, now: float) -> bool:
    """The ingest's: mark an active alert acknowledged; False if it is no longer active."""
    cur = conn.execute(
        "UPDATE device_alerts SET ack_by = ?, ack_at = ?, ack_note = ? WHERE device_id = ? AND subsystem = ?",
        (by, now, note, device_id, subsystem),
    )
    return cur.rowcount == 1


def device_tags(conn: Connection, device_id: str) -> set[str]:
    """A device's registry tags."""
    return {t for (t,) in conn.execute("SELECT tag FROM device_tags WHERE device_id = ?", (device_id,))}


def alert_objects(conn: Connection, device: dict[str, Any], now: float) -> list[dict[str, Any]]:
    """A device's active alerts, worst first, with their lifecycle: acknowledged, flapping, confirmed, silenced."""
    rows = conn.execute(
        "SELECT a.subsystem, a.state, a.message, a.updated_at, a.ack_by, a.ack_at, a.ack_note, f.flapping"
        " FROM device_alerts a LEFT JOIN alert_flaps f ON f.device_id = a.device_id AND f.subsystem = a.subsystem"
        f" WHERE a.device_id = ? ORDER BY {rank_sql('a.state')}, a.subsystem",
        (device["id"],),
    ).fetchall()
    active, tags = silences(conn, now), device_tags(conn, device["id"])
    offline = device["liveness"] == "offline"
    out = []
    for subsystem, state, message, updated_at, ack_by, ack_at, ack_note, flapping in rows:
        until = silenced_until(active, device["id"], subsystem, tags, now, device.get("site"))
        out.append({
            "subsystem": subsystem, "state": state, "message": message, "updated_at": iso(updated_at),
            "acknowledged": None if ack_by is None else {"by": ack_by, "at": iso(ack_at), "note": ack_note},
            "flapping": bool(flapping),
            "confirmed": not offline,
            "unconfirmed_since": device["last_seen"] if offline else None,
            "silenced_until": iso(until),
        })  # fmt: skip
    return out


def silence_dict(silence: Silence) -> dict[str, Any]:
    """A silence as the API shows it."""
    return {
        "id": silence.id, "device": silence.device_id, "tag": silence.tag, "subsystem": silence.subsystem,
        "starts_at": iso(silence.starts_at), "ends_at": iso(silence.ends_at), "comment": silence.comment,
        "created_by": silence.created_by, "created_at": iso(silence.created_at), "site": silence.site,
        "device_count": None if silence.device_ids is None else len(silence.device_ids),
    }  # fmt: skip


def silences_by_id(conn: Connection, ids: list[int]) -> list[Silence]:
    """The silences with these ids (the notifier's watch list after a restart)."""
    marks = ", ".join("?" * len(ids)) or "NULL"
    return [_silence(row) for row in conn.execute(f"{_SILENCE} WHERE id IN ({marks})", ids)]


def problems_in_scope(conn: Connection, silence: Silence) -> list[dict[str, Any]]:
    """What is wrong now within a silence's matchers, as the events that told of it would read (ids 0).

    The alerts of flapping subsystems are left out: they stay quiet until they settle.
    """
    scope = (  # typed, so PostgreSQL knows what a NULL is
        "(CAST(?1 AS TEXT) IS NULL OR {d} = ?1)"
        " AND (CAST(?2 AS TEXT) IS NULL OR {d} IN (SELECT device_id FROM device_tags WHERE tag = ?2))"
        " AND (CAST(?3 AS TEXT) IS NULL OR {d} IN (SELECT device_id FROM registry WHERE site = ?3))"
    )
    args: dict[str, Any] = {"1": silence.device_id, "2": silence.tag, "3": silence.site, "4": silence.subsystem}
    listed = silence.device_ids  # a bulk silence's devices: kept to them here, as covers() does
    rows = conn.execute(
        "SELECT a.device_id, a.subsystem, a.state, a.message FROM device_alerts a LEFT JOIN alert_flaps f"
        " ON f.device_id = a.device_id AND f.subsystem = a.subsystem"
        f" WHERE COALESCE(f.flapping, 0) = 0 AND (CAST(?4 AS TEXT) IS NULL OR a.subsystem = ?4)"
        f" AND {scope.format(d='a.device_id')}"
        " ORDER BY a.device_id, a.subsystem",
        args,
    ).fetchall()
    events = [
        {"id": 0, "type": "alert", "severity": ALERT_SEVERITY[state], "source_id": device_id,
         "payload": {"subsystem": subsystem, "state": state, "message": message, "previous_state": None}}
        for device_id, subsystem, state, message in rows
        if listed is None or device_id in listed
    ]  # fmt: skip
    if silence.subsystem is None:
        offline = conn.execute(
            f"SELECT d.id, d.last_seen FROM devices d WHERE d.liveness = 'offline' AND {scope.format(d='d.id')}"
            " ORDER BY d.id",
            args,
        ).fetchall()
        events += [
            {"id": 0, "type": "device_offline", "severity": "warning", "source_id": device_id,
             "payload": {"last_seen": iso(last_seen)}}
            for device_id, last_seen in offline
            if listed is None or device_id in listed
        ]  # fmt: skip
    return events
