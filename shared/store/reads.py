"""The web's reads (and tools' and tests'): short statements on a read-only connection."""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

from shared.events import event_dict, iso
from shared.severity import health, rank_sql
from shared.store.dialect import Connection, connect, read
from shared.store.registry import UNREGISTERED, Entry, entry_dict, entry_json, registry_entries, registry_entry

EVENT_COLUMNS = "id, ts, type, severity, source_id, payload"
ALERT_ORDER = f"{rank_sql('state')}, subsystem"
EVENT_CHUNK = 1000


def counters(conn: Connection) -> dict[str, int]:
    """Every persistent counter of the ingest."""
    return dict(conn.execute("SELECT name, value FROM counters ORDER BY name").fetchall())


def _event_row(row: tuple[Any, ...]) -> dict[str, Any]:
    return event_dict(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]))


def event_rows_after(conn: Connection, after: int, limit: int) -> list[tuple[int, float, str, str, str, str]]:
    """Raw (id, ts, type, severity, source_id, payload JSON) rows with id > after, oldest first."""
    sql = f"SELECT {EVENT_COLUMNS} FROM events WHERE id > ? ORDER BY id LIMIT ?"
    return conn.execute(sql, (after, limit)).fetchall()


def events_after(
    conn: Connection, after: int = 0, limit: int = 1000, device: str | None = None, upto: int | None = None
) -> list[dict[str, Any]]:
    """Stored events with after < id (<= upto), oldest first, in wire form; optionally one device's."""
    where, args = ["id > ?"], [after]
    if device is not None:
        where.append("source_id = ?")
        args.append(device)  # type: ignore[arg-type]
    if upto is not None:
        where.append("id <= ?")
        args.append(upto)
    sql = f"SELECT {EVENT_COLUMNS} FROM events WHERE {' AND '.join(where)} ORDER BY id LIMIT ?"
    return [_event_row(r) for r in conn.execute(sql, (*args, limit)).fetchall()]


def read_events(
    path: str | Path, after: int, device: str | None = None, upto: int | None = None, chunk: int = EVENT_CHUNK
) -> Iterator[dict[str, Any]]:
    """Every stored event after `after` (to `upto`), oldest first, read in chunks: no read transaction stays open.

    The one event reader of the web: the hub fills id holes with it and the stream catches up with it.
    """
    with closing(connect(path, readonly=True)) as conn:
        while True:
            rows = events_after(conn, after, limit=chunk, device=device, upto=upto)
            yield from rows
            if len(rows) < chunk:
                return
            after = rows[-1]["id"]


def recent_events(conn: Connection, limit: int = 100, device: str | None = None) -> list[dict[str, Any]]:
    """The newest events, oldest first."""
    if device is None:
        rows = conn.execute(f"SELECT {EVENT_COLUMNS} FROM events ORDER BY id DESC LIMIT ?", (limit,))
    else:
        rows = conn.execute(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE source_id = ? ORDER BY id DESC LIMIT ?", (device, limit)
        )
    return [_event_row(r) for r in reversed(rows.fetchall())]


def event_ids(conn: Connection, after: int = 0) -> list[int]:
    """Ids of the stored events after `after`, in order (payloads left undecoded)."""
    return [row[0] for row in conn.execute("SELECT id FROM events WHERE id > ? ORDER BY id", (after,))]


def alerts(conn: Connection, device_id: str) -> list[dict[str, Any]]:
    """A device's active alert set, most severe first (docs/events.md#alert-order)."""
    rows = conn.execute(
        f"SELECT subsystem, state, message, updated_at FROM device_alerts WHERE device_id = ? ORDER BY {ALERT_ORDER}",
        (device_id,),
    ).fetchall()
    return [{"subsystem": s, "state": st, "message": m, "updated_at": iso(u)} for s, st, m, u in rows]


DEVICE_COLUMNS = "id, first_seen, last_seen, liveness, playback_active, melody_uid, last_heartbeat"
ALERT_SUMMARY = f"SELECT device_id, COUNT(*), MIN({rank_sql('state')}) FROM device_alerts"
NEVER_HEARD = (None, None, "unknown", 0, None, None)  # a registered device's state until it reports


def _device(row: tuple[Any, ...], count: int, worst: int | None, entry: Entry) -> dict[str, Any]:
    device_id, first_seen, last_seen, liveness, playing, melody, heartbeat = row
    return {
        "id": device_id,
        "health": health(liveness, worst),
        "liveness": liveness,
        "first_seen": iso(first_seen),
        "last_seen": iso(last_seen),
        "playback": {"active": bool(playing), "melody_uid": melody},
        "active_alerts": count,
        "last_heartbeat": json.loads(heartbeat) if heartbeat else None,
        **entry_dict(entry),
    }


def _fleet(conn: Connection) -> tuple[list[tuple[Any, ...]], dict[str, tuple[int, int]], dict[str, Entry]]:
    """Device rows by id (registered-only ones included), alert summaries and registry entries, in one snapshot."""
    with read(conn):
        summary = {d: (n, worst) for d, n, worst in conn.execute(ALERT_SUMMARY + " GROUP BY device_id")}
        rows = conn.execute(f"SELECT {DEVICE_COLUMNS} FROM devices ORDER BY id").fetchall()
        entries = registry_entries(conn)
    if entries:
        heard = {row[0] for row in rows}
        extra = sorted((d, *NEVER_HEARD) for d in entries if d not in heard)
        if extra:
            rows = list(heapq.merge(rows, extra, key=lambda row: row[0]))
    return rows, summary, entries


def devices(conn: Connection) -> list[dict[str, Any]]:
    """Every known or registered device with its health, alert count and registry fields, by id."""
    rows, summary, entries = _fleet(conn)
    return [_device(row, *summary.get(row[0], (0, None)), entries.get(row[0], UNREGISTERED)) for row in rows]


def device(conn: Connection, device_id: str) -> dict[str, Any] | None:
    """One device with its health and registry fields, or None if neither seen nor registered."""
    row = conn.execute(f"SELECT {DEVICE_COLUMNS} FROM devices WHERE id = ?", (device_id,)).fetchone()
    entry = registry_entry(conn, device_id)
    if row is None and entry is None:
        return None
    _, count, worst = conn.execute(ALERT_SUMMARY + " WHERE device_id = ?", (device_id,)).fetchone()
    return _device(row or (device_id, *NEVER_HEARD), count, worst, entry or UNREGISTERED)


def is_known(conn: Connection, device_id: str) -> bool:
    """True once the device has reported (has a row); a registered-only device is not known."""
    return conn.execute("SELECT 1 FROM devices WHERE id = ?", (device_id,)).fetchone() is not None


def devices_json(conn: Connection) -> str:
    """devices() as JSON text, written around each stored heartbeat's JSON instead of decoding and re-encoding it.

    Ids, liveness and health are plain words (ids are validated to [A-Za-z0-9_.:-] before storage);
    melody_uid comes from a device and the registry's text from operators, both escaped by json.dumps;
    last_heartbeat is JSON the ingest itself encoded, tags JSON the web encoded.
    """
    rows, summary, entries = _fleet(conn)
    none, unregistered = (0, None), entry_json(UNREGISTERED)
    parts = []
    for device_id, first_seen, last_seen, liveness, playing, melody, heartbeat in rows:
        count, worst = summary.get(device_id, none)
        entry = entries.get(device_id)
        first = f'"{iso(first_seen)}"' if first_seen is not None else "null"
        seen = f'"{iso(last_seen)}"' if last_seen is not None else "null"
        melody_json = "null" if melody is None else json.dumps(melody)
        parts.append(
            f'{{"id":"{device_id}","health":"{health(liveness, worst)}","liveness":"{liveness}",'
            f'"first_seen":{first},"last_seen":{seen},'
            f'"playback":{{"active":{"true" if playing else "false"},"melody_uid":{melody_json}}},'
            f'"active_alerts":{count},"last_heartbeat":{heartbeat or "null"},'
            f"{unregistered if entry is None else entry_json(entry)}}}"
        )
    return "[" + ",".join(parts) + "]"
