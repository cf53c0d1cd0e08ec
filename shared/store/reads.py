"""The web's reads (and tools' and tests'): short statements on a read-only connection."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

from shared.events import event_dict, iso
from shared.severity import health, rank_sql
from shared.store.dialect import Connection, connect, read

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


def _device(row: tuple[Any, ...], count: int, worst: int | None) -> dict[str, Any]:
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
    }


def devices(conn: Connection) -> list[dict[str, Any]]:
    """Every known device with its health and alert count, by id, read in one snapshot."""
    with read(conn):
        summary = {d: (n, worst) for d, n, worst in conn.execute(ALERT_SUMMARY + " GROUP BY device_id")}
        rows = conn.execute(f"SELECT {DEVICE_COLUMNS} FROM devices ORDER BY id").fetchall()
    return [_device(row, *summary.get(row[0], (0, None))) for row in rows]


def device(conn: Connection, device_id: str) -> dict[str, Any] | None:
    """One device with its health, or None if never seen."""
    row = conn.execute(f"SELECT {DEVICE_COLUMNS} FROM devices WHERE id = ?", (device_id,)).fetchone()
    if row is None:
        return None
    _, count, worst = conn.execute(ALERT_SUMMARY + " WHERE device_id = ?", (device_id,)).fetchone()
    return _device(row, count, worst)


def is_known(conn: Connection, device_id: str) -> bool:
    """True once the device has a row."""
    return conn.execute("SELECT 1 FROM devices WHERE id = ?", (device_id,)).fetchone() is not None


def devices_json(conn: Connection) -> str:
    """devices() as JSON text, written around each stored heartbeat's JSON instead of decoding and re-encoding it.

    Ids, liveness and health are plain words (ids are validated to [A-Za-z0-9_.:-] before storage);
    melody_uid comes from a device and is escaped; last_heartbeat is JSON the ingest itself encoded.
    """
    with read(conn):
        summary = {d: (n, worst) for d, n, worst in conn.execute(ALERT_SUMMARY + " GROUP BY device_id")}
        rows = conn.execute(f"SELECT {DEVICE_COLUMNS} FROM devices ORDER BY id").fetchall()
    none = (0, None)
    parts = []
    for device_id, first_seen, last_seen, liveness, playing, melody, heartbeat in rows:
        count, worst = summary.get(device_id, none)
        seen = f'"{iso(last_seen)}"' if last_seen is not None else "null"
        melody_json = "null" if melody is None else json.dumps(melody)
        parts.append(
            f'{{"id":"{device_id}","health":"{health(liveness, worst)}","liveness":"{liveness}",'
            f'"first_seen":"{iso(first_seen)}","last_seen":{seen},'
            f'"playback":{{"active":{"true" if playing else "false"},"melody_uid":{melody_json}}},'
            f'"active_alerts":{count},"last_heartbeat":{heartbeat or "null"}}}'
        )
    return "[" + ",".join(parts) + "]"
