"""The web's reads (and tools' and tests'): short statements on a read-only connection."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

from shared.events import event_dict, iso
from shared.severity import rank_sql
from shared.store.device_rows import DEVICE_FROM, DEVICE_SELECT, device_dict
from shared.store.device_rows import devices_json as rows_json
from shared.store.dialect import Connection, connect
from shared.store.listing import DeviceQuery, list_devices
from shared.store.markers import page_markers

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


def last_event_id_at(conn: Connection, ts: float) -> int:
    """The highest id of the events stored at or before `ts` (0 if none): where the newer ones begin."""
    row = conn.execute("SELECT MAX(id) FROM events WHERE ts <= ?", (ts,)).fetchone()
    return int(row[0] or 0)


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


def devices(conn: Connection) -> list[dict[str, Any]]:
    """Every known or registered device with its health, alert count and registry fields, by id."""
    rows, _ = list_devices(conn, DeviceQuery())
    return [device_dict(row) for row in rows]


def devices_json(conn: Connection) -> str:
    """devices() as JSON text (device_rows.devices_json)."""
    return rows_json(list_devices(conn, DeviceQuery())[0])


def device(conn: Connection, device_id: str, now: float | None = None) -> dict[str, Any] | None:
    """One device with its health and registry fields (and with `now` its markers), or None if neither seen nor
    registered."""
    row = conn.execute(DEVICE_SELECT + DEVICE_FROM + " WHERE d.id = ?", (device_id,)).fetchone()
    if row is None:
        return None
    return device_dict(row, None, None if now is None else page_markers(conn, [row], now))


def is_known(conn: Connection, device_id: str) -> bool:
    """True once the device has reported; a registered device that never did is not known."""
    row = conn.execute("SELECT 1 FROM devices WHERE id = ? AND first_seen IS NOT NULL", (device_id,))
    return row.fetchone() is not None
