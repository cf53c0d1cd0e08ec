"""The schema as numbered migrations (SQLite replays them; tables.py describes where they lead); applied at start."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from shared.severity import health_sql, rank_sql, standing_sql
from shared.store import dialect, search
from shared.store.engine import Script
from shared.store.typed_ddl import EPISODES, TEAMS, per_engine

MIGRATIONS: list[Script] = [
    # 1: the current-state tables, the event outbox and small key/value tables.
    """
    CREATE TABLE devices (
        id TEXT PRIMARY KEY,
        first_seen REAL NOT NULL,
        last_seen REAL,
        liveness TEXT NOT NULL DEFAULT 'unknown' CHECK (liveness IN ('online', 'offline', 'unknown')),
        playback_active INTEGER NOT NULL DEFAULT 0,
        melody_uid TEXT,
        last_heartbeat TEXT
    );
    CREATE TABLE device_alerts (
        device_id TEXT NOT NULL,
        subsystem TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('WARNING', 'CRITICAL', 'FAILED')),
        message TEXT,
        updated_at REAL NOT NULL,
        PRIMARY KEY (device_id, subsystem)
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts REAL NOT NULL,
        type TEXT NOT NULL,
        severity TEXT NOT NULL,
        source_id TEXT NOT NULL,
        payload TEXT NOT NULL
    );
    CREATE INDEX events_source ON events (source_id, id);
    CREATE INDEX events_ts ON events (ts);
    CREATE INDEX devices_liveness ON devices (liveness, last_seen);
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    """,
    # 2: alert messages applied, by MQTT packet id, to recognise the broker's redeliveries.
    """
    CREATE TABLE delivered (mid INTEGER PRIMARY KEY, digest BLOB NOT NULL, at REAL NOT NULL);
    """,
    # 3: notifications (docs/notifications.md): each rule's open group, what each rule has told its
    # channel is wrong, and the delivery queue, which is also the record operators see.
    """
    CREATE TABLE notify_groups (
        rule TEXT PRIMARY KEY,  -- a rule's index and channel, "0:ops": editing the rule starts afresh
        opened_at REAL NOT NULL,
        due_at REAL NOT NULL
    );
    CREATE TABLE notify_items (
        rule TEXT NOT NULL,
        device_id TEXT NOT NULL,
        subject TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('problem', 'resolved', 'event')),
        category TEXT NOT NULL,
        event_id INTEGER NOT NULL,
        line TEXT NOT NULL,
        PRIMARY KEY (rule, device_id, subject)
    );
    CREATE TABLE notify_told (
        rule TEXT NOT NULL,
        device_id TEXT NOT NULL,
        subject TEXT NOT NULL,
        category TEXT NOT NULL,
        told_at REAL NOT NULL,
        line TEXT NOT NULL,
        PRIMARY KEY (rule, device_id, subject)
    );
    CREATE TABLE notifications (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        channel TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'dropped')),
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        next_attempt_at REAL NOT NULL,
        sent_at REAL,
        last_error TEXT,
        title TEXT NOT NULL,
        body TEXT NOT NULL,
        notify_type TEXT NOT NULL,
        event_ids TEXT NOT NULL
    );
    CREATE INDEX notifications_queue ON notifications (channel, status, id);
    """,
    # 4: the operators' registry (written by the web only, §7) and the web's requests to the ingest.
    """
    CREATE TABLE registry (
        device_id TEXT PRIMARY KEY,
        name TEXT,
        site TEXT,
        tags TEXT NOT NULL DEFAULT '[]',  -- a JSON array of tags
        notes TEXT,
        heartbeat_timeout_s REAL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE ingest_commands (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        device_id TEXT NOT NULL,
        at REAL NOT NULL
    );
    """,
    # 5: the fleet at scale (§7). `devices` gains each device's worst alert rank and alert count, kept by
    # the ingest with its alerts, so the health order is an index (the expression comes from shared/severity.py; change
    # the order there and a new migration must rebuild the index). A registered device that never
    # reported has a row too, first_seen NULL, so every listing reads one table. Tags get a table of
    # their own for the tag filter, and their counts one kept by the web with them; sites an index.
    f"""
    CREATE TABLE devices_v5 (
        id TEXT PRIMARY KEY,
        first_seen REAL,
        last_seen REAL,
        liveness TEXT NOT NULL DEFAULT 'unknown' CHECK (liveness IN ('online', 'offline', 'unknown')),
        playback_active INTEGER NOT NULL DEFAULT 0,
        melody_uid TEXT,
        last_heartbeat TEXT,
        worst_rank INTEGER,
        alert_count INTEGER NOT NULL DEFAULT 0
    );
    INSERT INTO devices_v5 SELECT d.*,
        (SELECT MIN({rank_sql("a.state")}) FROM device_alerts a WHERE a.device_id = d.id),
        (SELECT COUNT(*) FROM device_alerts a WHERE a.device_id = d.id) FROM devices d;
    INSERT INTO devices_v5 (id) SELECT device_id FROM registry WHERE true ON CONFLICT (id) DO NOTHING;
    DROP TABLE devices;
    ALTER TABLE devices_v5 RENAME TO devices;
    CREATE INDEX devices_liveness ON devices (liveness, last_seen);
    CREATE INDEX devices_health ON devices ({health_sql()}, id);
    CREATE INDEX devices_last_seen ON devices (COALESCE(last_seen, 0), id);
    CREATE TABLE device_tags (tag TEXT NOT NULL, device_id TEXT NOT NULL, PRIMARY KEY (tag, device_id));
    CREATE INDEX device_tags_device ON device_tags (device_id);
    INSERT INTO device_tags (tag, device_id) SELECT DISTINCT j.value, r.device_id FROM registry r, json_each(r.tags) j;
    CREATE TABLE tag_counts (tag TEXT PRIMARY KEY, n INTEGER NOT NULL);
    INSERT INTO tag_counts (tag, n) SELECT tag, COUNT(*) FROM device_tags GROUP BY tag;
    CREATE INDEX registry_site ON registry (site);
    """,
    # 6: the alert lifecycle (§9): each subsystem's recent state changes, to tell flapping (the ingest's).
    """
    CREATE TABLE alert_flaps (
        device_id TEXT NOT NULL,
        subsystem TEXT NOT NULL,
        changes TEXT NOT NULL,  -- a JSON array of the last state changes' times, oldest first
        flapping INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (device_id, subsystem)
    );
    """,
    # 7: acknowledgements (kept on the active alert: a new state clears them), the web's silences, the
    # commands' arguments, and whether what a channel was told has been acknowledged (no reminders).
    """
    ALTER TABLE device_alerts ADD COLUMN ack_by TEXT;
    ALTER TABLE device_alerts ADD COLUMN ack_at REAL;
    ALTER TABLE device_alerts ADD COLUMN ack_note TEXT;
    ALTER TABLE ingest_commands ADD COLUMN args TEXT NOT NULL DEFAULT '{}';
    ALTER TABLE notify_told ADD COLUMN acked INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE silences (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        device_id TEXT,
        tag TEXT,
        subsystem TEXT,
        starts_at REAL NOT NULL,
        ends_at REAL NOT NULL,
        comment TEXT,
        created_by TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX silences_ends ON silences (ends_at);
    """,
    # 8: the daily tool (§12): each device's firmware (devices.firmware_key of its heartbeat); silences by site
    # or by a list of devices (bulk), how far the ingest has told of each (silence_created, silence_ended) and who
    # ended it early; the timeline's filters by type and severity. From here on every migration is also
    # PostgreSQL's: portable SQL.
    """
    ALTER TABLE devices ADD COLUMN firmware TEXT;
    CREATE INDEX devices_firmware ON devices (firmware, id);
    ALTER TABLE silences ADD COLUMN site TEXT;
    ALTER TABLE silences ADD COLUMN device_ids TEXT;
    ALTER TABLE silences ADD COLUMN told INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE silences ADD COLUMN ended_by TEXT;
    CREATE INDEX events_type ON events (type, id);
    CREATE INDEX events_severity ON events (severity, id);
    """,
    # 9: the list at fleet scale (§12): sort=severity places a device by its worst alert, offline or not
    # (shared/severity.py standing), so its index is rebuilt on that; sort=name walks the registry by name.
    f"""
    DROP INDEX devices_health;
    CREATE INDEX devices_health ON devices (({standing_sql()}), id);
    CREATE INDEX registry_name ON registry (lower(name), device_id);
    """,
    # 10: the list's q by index (§12), each engine's own: SQLite's FTS5 trigram table and its triggers,
    # PostgreSQL's pg_trgm GIN indexes (search.py).
    search.DDL,
    # 11: history (§13): one row per problem from its start to its end (shared/store/episodes.py), kept for
    # history.retention_days; span is the power-of-two bracket of a closed one's length, so a window's overlaps
    # are a few index ranges (shared/store/episodes.py overlapping_sql). Portable but for the types.
    per_engine(EPISODES),
    # 12: the reports' window reads covered by the index (§13): a month's outages summed per device, and the
    # incidents' acknowledgement times, without a table lookup per row (2.5x at 5,000 devices).
    """
    DROP INDEX episodes_span;
    CREATE INDEX episodes_span ON episodes (kind, span, started, ended, device_id, ack_at);
    """,
    # 13: teams (§14): the audit log of state-changing requests and failed sign-ins (shared/store/audit.py), and
    # each told problem's escalation: when it is due (told_at + the rule's escalate_after_s) and when it was sent.
    per_engine(TEAMS),
    # 14: SQLite's reports read incidents device by device (§13): each one's incidents started in a window are one
    # range of this index, in device order, so a month's million are grouped by device without a sort (medians.py).
    # PostgreSQL groups them by hash: it has no use for it.
    {
        "sqlite": "CREATE INDEX episodes_incidents ON episodes (device_id, started, ack_at, ended)"
        " WHERE kind = 'incident';",
        "postgresql": "",
    },
]


def migrate(conn: dialect.Connection) -> int:
    """Apply pending migrations in one transaction (the dialect's way); returns the schema version now in force."""
    conn.dialect.migrate(conn, MIGRATIONS)
    return len(MIGRATIONS)


UNREADABLE = ("SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_READONLY", "SQLITE_IOERR", "SQLITE_AUTH")
DAMAGED = ("SQLITE_NOTADB", "SQLITE_CORRUPT")


class StoreCorrupt(Exception):
    """The database file is corrupt or cannot be opened: a stop at start with one line saying what to do."""


def _unusable(path: str | Path, exc: sqlite3.DatabaseError) -> StoreCorrupt | None:
    """The stop for SQLite's refusal of the file itself; None for anything else (a lock, a busy database, a bug)."""
    name = getattr(exc, "sqlite_errorname", "")
    if name.startswith(UNREADABLE):
        return StoreCorrupt(
            f"database {path} cannot be opened for reading and writing ({exc}): "
            "it must be a file this user can read and write, in a directory it can write"
        )
    if name.startswith(DAMAGED):
        return StoreCorrupt(
            f"database {path} is corrupt or not a SQLite database ({exc}): "
            "move it aside (the next start creates an empty one) or restore a backup"
        )
    return None


def open_store(path: str | Path) -> dialect.Connection:
    """Open for writing and bring the schema up to date; StoreCorrupt if SQLite refuses the file itself."""
    conn = None
    try:
        conn = dialect.connect(path)
        migrate(conn)
    except sqlite3.DatabaseError as exc:
        if conn is not None:
            conn.close()
        stop = _unusable(path, exc)
        if stop is None:
            raise
        raise stop from exc
    return conn
