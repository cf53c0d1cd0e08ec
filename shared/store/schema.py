"""The schema as numbered migrations; either process applies what is pending at start."""

from __future__ import annotations

from pathlib import Path

from shared.store import dialect

MIGRATIONS: list[str] = [
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
]


def migrate(conn: dialect.Connection) -> int:
    """Apply pending migrations in one transaction; returns the schema version now in force."""
    with dialect.write(conn):
        version = dialect.schema_version(conn)
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            for statement in filter(str.strip, script.split(";")):
                conn.execute(statement)
            dialect.set_schema_version(conn, number)
    return len(MIGRATIONS)


def open_store(path: str | Path) -> dialect.Connection:
    """Open for writing and bring the schema up to date."""
    conn = dialect.connect(path)
    migrate(conn)
    return conn
