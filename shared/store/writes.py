"""The ingest's statements, each run inside the writer's transaction (docs/architecture.md#the-store)."""

from __future__ import annotations

import json
from typing import Any

from shared.severity import rank_sql
from shared.store import dialect, sets
from shared.store.dialect import Connection

# A device row with first_seen NULL is a registered device that never reported (the web's placeholder,
# shared/store/registry.py): the ingest's statements make it a reported one, and it is never overdue.


def ensure_device(conn: Connection, device_id: str, now: float) -> None:
    """Make a device known (liveness unknown) if it is not yet."""
    conn.execute(
        "INSERT INTO devices (id, first_seen) VALUES (?, ?)"
        " ON CONFLICT (id) DO UPDATE SET first_seen = COALESCE(devices.first_seen, excluded.first_seen)",
        (device_id, now),
    )


def mark_alive(conn: Connection, device_id: str, now: float) -> None:
    """A new device's (or a registered one's) first live sign: the row, online, seen now."""
    mark_all_alive(conn, [(device_id, now, None)])


def mark_all_alive(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """New devices' (or registered ones') first live signs, one row each: (device_id, now, heartbeat or None), and
    a fourth, the heartbeat's firmware version or None (the stored one stays)."""
    sets.run(
        conn,
        "INSERT INTO devices (id, first_seen, last_seen, liveness, last_heartbeat, firmware)"
        " SELECT column1, column2, column2, 'online', column3, column4 FROM ({rows}) AS v WHERE true"
        " ON CONFLICT (id) DO UPDATE SET first_seen = COALESCE(devices.first_seen, excluded.first_seen),"
        " last_seen = excluded.last_seen, liveness = 'online',"
        " last_heartbeat = COALESCE(excluded.last_heartbeat, devices.last_heartbeat),"
        " firmware = COALESCE(excluded.firmware, devices.firmware)",
        ("text", "float8", "text", "text"),
        _four(rows),
    )


def _four(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows given without the firmware (three columns) with None for it."""
    return rows if not rows or len(rows[0]) == 4 else [(*row, None) for row in rows]


def record_seen(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """Batch of (last_seen, heartbeat or None, device_id[, firmware or None]) for existing devices, one row each:
    online, seen then; a firmware version replaces the stored one (riding the same statement, §12)."""
    sets.run(
        conn,
        "UPDATE devices SET last_seen = v.column1, liveness = 'online',"
        " last_heartbeat = COALESCE(v.column2, devices.last_heartbeat),"
        " firmware = COALESCE(v.column4, devices.firmware)"
        " FROM ({rows}) AS v WHERE devices.id = v.column3",
        ("float8", "text", "text", "text"),
        _four(rows),
    )


def liveness_all(conn: Connection) -> list[tuple[str, str, float | None]]:
    """(id, liveness, last_seen) of every device that has reported."""
    return conn.execute("SELECT id, liveness, last_seen FROM devices WHERE first_seen IS NOT NULL").fetchall()


def all_alerts(conn: Connection) -> list[tuple[str, str, str, str | None]]:
    """Every active alert as (device_id, subsystem, state, message)."""
    return conn.execute(
        "SELECT device_id, subsystem, state, message FROM device_alerts ORDER BY device_id, subsystem"
    ).fetchall()


def all_flaps(conn: Connection) -> list[tuple[str, str, list[float], bool]]:
    """Every subsystem's recent state changes as (device_id, subsystem, change times, flapping)."""
    rows = conn.execute("SELECT device_id, subsystem, changes, flapping FROM alert_flaps").fetchall()
    return [(d, s, json.loads(changes), bool(flapping)) for d, s, changes, flapping in rows]


def write_flaps(
    conn: Connection, upserts: list[tuple[str, str, list[float], bool]], deletes: list[tuple[str, str]]
) -> None:
    """Keep the flap records the ingest changed (vesper_ingest/flapping.py) and drop the settled ones; one per key."""
    sets.run(
        conn,
        "INSERT INTO alert_flaps (device_id, subsystem, changes, flapping) {rows}"
        " ON CONFLICT (device_id, subsystem) DO UPDATE SET changes = excluded.changes, flapping = excluded.flapping",
        ("text", "text", "text", "integer"),
        [(d, s, json.dumps(changes), int(flapping)) for d, s, changes, flapping in upserts],
    )
    sets.run(conn, "DELETE FROM alert_flaps WHERE (device_id, subsystem) IN ({rows})", ("text", "text"), deletes)


def set_heartbeat(conn: Connection, device_id: str, heartbeat: str) -> None:
    """Keep the device's last heartbeat payload (JSON text)."""
    conn.execute("UPDATE devices SET last_heartbeat = ? WHERE id = ?", (heartbeat, device_id))


def set_heartbeat_if_empty(conn: Connection, device_id: str, heartbeat: str) -> None:
    """Keep a retained heartbeat only when nothing fresher is stored."""
    conn.execute(
        "UPDATE devices SET last_heartbeat = ? WHERE id = ? AND last_heartbeat IS NULL", (heartbeat, device_id)
    )


def set_playback(conn: Connection, device_id: str, active: bool, melody_uid: str | None) -> str | None:
    """Set playback state; returns the melody that was playing before."""
    row = conn.execute("SELECT melody_uid FROM devices WHERE id = ?", (device_id,)).fetchone()
    conn.execute(
        "UPDATE devices SET playback_active = ?, melody_uid = ? WHERE id = ?", (int(active), melody_uid, device_id)
    )
    return row[0] if row else None


def _upsert_alerts(keep_ack: str) -> str:
    """The upsert of active alerts; a new state is unacknowledged again (every expression reads the row as it was).

    `keep_ack` is the condition under which an acknowledgement survives: the same state, and for a
    batch's net change also no change of state in between (vesper_ingest/fleet.py decides which).
    """
    return (
        "INSERT INTO device_alerts (device_id, subsystem, state, message, updated_at) {rows}"
        " ON CONFLICT (device_id, subsystem) DO UPDATE SET"
        " state = excluded.state, message = excluded.message, updated_at = excluded.updated_at,"
        + ",".join(
            f" {c} = CASE WHEN {keep_ack} THEN device_alerts.{c} END" for c in ("ack_by", "ack_at", "ack_note")
        )
    )


UPSERT_ALERTS = _upsert_alerts("device_alerts.state = excluded.state")
UPSERT_CHANGED_ALERTS = _upsert_alerts("1 = 0")
DELETE_ALERTS = "DELETE FROM device_alerts WHERE (device_id, subsystem) IN ({rows})"
ALERT_TYPES = ("text", "text", "text", "text", "float8")
# Each change to a device's alerts keeps its worst rank (the health order's input) and count true with it.
RECOUNT = (
    "UPDATE devices SET (worst_rank, alert_count) = (SELECT"
    f" MIN({rank_sql('state')}), COUNT(*) FROM device_alerts WHERE device_id = devices.id)"
    " WHERE id IN ({rows})"
)


def upsert_alert(conn: Connection, device_id: str, subsystem: str, state: str, message: str | None, now: float) -> None:
    """Create or replace the active alert of one subsystem."""
    write_alerts(conn, [(device_id, subsystem, state, message, now, False)], [])


def write_alerts(
    conn: Connection, upserts: list[tuple[str, str, str, str | None, float, bool]], deletes: list[tuple[str, str]]
) -> None:
    """Net alert changes as sets, one per key: upserts (device, subsystem, state, message, at, state changed
    within the batch: its acknowledgement goes whatever the final state), deletes (device, subsystem); then each
    touched device's worst rank and count."""
    sets.run(conn, UPSERT_ALERTS, ALERT_TYPES, [u[:5] for u in upserts if not u[5]])
    sets.run(conn, UPSERT_CHANGED_ALERTS, ALERT_TYPES, [u[:5] for u in upserts if u[5]])
    sets.run(conn, DELETE_ALERTS, ("text", "text"), deletes)
    sets.run(conn, RECOUNT, ("text",), [(d,) for d in sorted({u[0] for u in upserts} | {d for d, _ in deletes})])


def insert_event(conn: Connection, ts: float, type_: str, severity: str, source_id: str, payload: str) -> int:
    """Append one event (payload as JSON text); returns its id."""
    cur = conn.execute(
        "INSERT INTO events (ts, type, severity, source_id, payload) VALUES (?, ?, ?, ?, ?) RETURNING id",
        (ts, type_, severity, source_id, payload),
    )
    return int(cur.fetchone()[0])


def insert_events(conn: Connection, rows: list[tuple[float, str, str, str, str]]) -> list[int]:
    """Append (ts, type, severity, source_id, payload) events in order; returns their ids, ascending.

    The ids are taken first and the rows sent as one set (sets.py; an insert per row cost 0.3 s of a
    50,000-device outage's sweep): PostgreSQL's from its sequence in one round trip; SQLite's are the ones
    after the highest it ever gave (AUTOINCREMENT keeps that above any explicit id), in the one writer's
    BEGIN IMMEDIATE transaction, so no other insert can take them.
    """
    if not rows:
        return []
    ids = dialect.new_event_ids(conn, len(rows))
    if ids is None:
        first = dialect.last_event_id(conn) + 1
        ids = list(range(first, first + len(rows)))
    sets.run(
        conn,
        "INSERT INTO events (id, ts, type, severity, source_id, payload) {rows}",
        ("bigint", "float8", "text", "text", "text", "text"),
        [(event_id, *row) for event_id, row in zip(ids, rows, strict=True)],
    )
    return ids


# The sweep's compare-and-set as one statement: a device's own timeout (the registry's, read each sweep: a change
# applies without a restart) or the default, and each its full grace from `since` (vesper_ingest/liveness.py's rules,
# the same arithmetic); only the rows this statement changed come back, so only they are announced.
MARK_OVERDUE = (
    "UPDATE devices SET liveness = 'offline' FROM (SELECT d.id, COALESCE(NULLIF(r.heartbeat_timeout_s, 0), ?2) AS t"
    " FROM devices d LEFT JOIN registry r ON r.device_id = d.id WHERE d.liveness != 'offline'"
    " AND d.first_seen IS NOT NULL AND COALESCE(d.last_seen, 0) <= ?4) AS o"
    " WHERE devices.id = o.id AND devices.liveness != 'offline' AND NOT ?1 < ?3 + o.t"
    " AND COALESCE(devices.last_seen, 0) <= ?1 - o.t RETURNING devices.id, devices.last_seen"
)


def mark_overdue_offline(
    conn: Connection, now: float, default: float, since: float, cutoff: float
) -> list[tuple[str, float | None]]:
    """Every device overdue now goes offline in one statement; returns (id, last_seen) of those it changed, by id.

    `cutoff` bounds the candidates (the shortest timeout's, an index range); `since` is the grace's start.
    """
    return sorted(conn.execute(MARK_OVERDUE, (now, default, since, cutoff)).fetchall())


def shortest_timeout(conn: Connection) -> float | None:
    """The shortest per-device heartbeat timeout in the registry, if any device has one."""
    return conn.execute("SELECT MIN(heartbeat_timeout_s) FROM registry").fetchone()[0]


def was_delivered(conn: Connection, mid: int, digest: bytes, since: float) -> bool:
    """True if this packet id carried this exact message, applied at or after `since`."""
    row = conn.execute("SELECT 1 FROM delivered WHERE mid = ? AND digest = ? AND at >= ?", (mid, digest, since))
    return row.fetchone() is not None


def record_delivered(conn: Connection, rows: list[tuple[int, bytes, float]]) -> None:
    """Remember (mid, digest, at) of applied alert messages; one row per packet id."""
    sets.run(
        conn,
        "INSERT INTO delivered (mid, digest, at) {rows}"
        " ON CONFLICT (mid) DO UPDATE SET digest = excluded.digest, at = excluded.at",
        ("integer", "bytea", "float8"),
        rows,
    )


def prune_events(conn: Connection, before: float) -> int:
    """Delete events older than `before`, keeping the highest id deleted (dialect.last_event_id); returns how many."""
    upto = conn.execute("SELECT max(id) FROM events WHERE ts < ?", (before,)).fetchone()[0]
    if upto is None:
        return 0
    if int(get_meta(conn, "events_pruned_upto", "0") or 0) < upto:
        set_meta(conn, "events_pruned_upto", str(upto))
    return conn.execute("DELETE FROM events WHERE ts < ?", (before,)).rowcount


def get_meta(conn: Connection, key: str, default: str | None = None) -> str | None:
    """Read one meta value."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else default


def set_meta(conn: Connection, key: str, value: str) -> None:
    """Write one meta value."""
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def add_counters(conn: Connection, deltas: dict[str, int]) -> None:
    """Add to the ingest's persistent counters (read by the web's /metrics)."""
    conn.executemany(
        "INSERT INTO counters (name, value) VALUES (?, ?)"
        " ON CONFLICT (name) DO UPDATE SET value = counters.value + excluded.value",
        [(name, value) for name, value in deltas.items() if value],
    )


def shift_times(conn: Connection, step: float) -> None:
    """Move what deadlines run from by a wall-clock step (vesper_ingest/clock.py); one statement per table."""
    conn.execute("UPDATE devices SET last_seen = last_seen + ? WHERE last_seen IS NOT NULL", (step,))
    conn.execute("UPDATE notify_groups SET opened_at = opened_at + ?, due_at = due_at + ?", (step, step))
    conn.execute("UPDATE notify_told SET told_at = told_at + ?, escalate_at = escalate_at + ?", (step, step))
