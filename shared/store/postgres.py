"""The PostgreSQL dialect (§10): a connection that speaks the store's SQL, and the schema as PostgreSQL writes it.

The store's statements are written once, in the SQL both engines run (`ON CONFLICT`, `RETURNING`,
row-value `UPDATE … SET (a, b) = (SELECT …)`); their `?` and `?N` placeholders become psycopg's
`%s` and `%(pN)s` here, once per statement text (cached). Only the DDL differs (identity columns,
double precision, bytea), so PostgreSQL creates the current schema in one step.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any, Protocol

import psycopg
from psycopg_pool import ConnectionPool

from shared.severity import health_sql

NUMBERED = re.compile(r"\?(\d+)")
# A connection lost or ended by the server (its idle-in-transaction timeout is an InternalError).
TRANSIENT = (psycopg.OperationalError, psycopg.InternalError)


@lru_cache(maxsize=1024)
def translate(sql: str) -> tuple[str, bool]:
    """The statement in psycopg's placeholders, and whether it names them (?N) rather than counts them (?)."""
    escaped = sql.replace("%", "%%")
    if NUMBERED.search(escaped):
        return NUMBERED.sub(r"%(p\1)s", escaped), True
    return escaped.replace("?", "%s"), False


def _named(args: Sequence[Any] | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(args, Mapping):
        return {f"p{key}": value for key, value in args.items()}
    return {f"p{n}": value for n, value in enumerate(args, start=1)}


class Lease(Protocol):
    """What a connection that carries the leader lock calls when its session is lost (leader.Lease)."""

    def recover(self) -> None:
        """Hold the lock again on a new session of the (new) primary, or raise LeadLost."""


class PgConnection:
    """A psycopg connection in autocommit mode, with sqlite3's execute and executemany (transactions explicit).

    A leader's connection has a `lease`: a session lost outside a transaction (a failover) is replaced by a new
    one that holds the lock again, and the statement runs there. Inside a transaction the work went with the
    session, so the error is the caller's (writer.py retries or settles it).
    """

    engine = "postgresql"

    def __init__(self, raw: psycopg.Connection, url: str = "") -> None:
        self.raw = raw
        self.url = url  # where a new session is opened (libpq's multi-host form finds the primary)
        self.pipelining = True  # leader.fence turns it off (a hung pipeline escapes the server's idle timeouts)
        self.in_transaction = False  # between this connection's BEGIN and its COMMIT or ROLLBACK
        self.lease: Lease | None = None

    def execute(self, sql: str, args: Sequence[Any] | Mapping[str, Any] = ()) -> psycopg.Cursor:
        """Run one statement; the cursor answers fetchone, fetchall, rowcount and iteration."""
        text, named = translate(sql)
        params = _named(args) if named else (tuple(args) or None)
        try:
            cur = self.raw.execute(text, params)  # type: ignore[arg-type]
        except TRANSIENT:
            if not self._recovered():
                raise
            cur = self.raw.execute(text, params)  # type: ignore[arg-type]
        if len(sql) < 10:  # BEGIN, COMMIT, ROLLBACK: dialect.write's
            word = sql.strip().upper()
            self.in_transaction = word == "BEGIN" or (self.in_transaction and word not in ("COMMIT", "ROLLBACK"))
        return cur

    def _recovered(self) -> bool:
        """After a failed statement: True once a lost session outside a transaction is replaced by the lease's."""
        if not self.raw.closed:
            return False
        lost_work, self.in_transaction = self.in_transaction, False
        if lost_work or self.lease is None:
            return False
        lease, self.lease = self.lease, None  # the lease's own statements must not recover again
        try:
            lease.recover()
        finally:
            self.lease = lease
        return True

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> psycopg.Cursor:
        """Run one statement per row: pipelined, or each in its own round trip when pipelining is off."""
        text, named = translate(sql)
        params = [_named(r) for r in rows] if named else [tuple(r) for r in rows]
        cur = self.raw.cursor()
        try:
            if self.pipelining:
                cur.executemany(text, params)  # type: ignore[arg-type]
            else:
                for one in params:
                    cur.execute(text, one)  # type: ignore[arg-type]
        except TRANSIENT:
            self.in_transaction = self.in_transaction and not self.raw.closed
            raise
        return cur

    def close(self) -> None:
        """Close the connection."""
        self.raw.close()


def _read_only(raw: psycopg.Connection) -> None:
    raw.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")


def connect(url: str, readonly: bool = False, pooled: bool = False) -> PgConnection:
    """A connection to the database at `url` (postgresql://…); readers' sessions are read-only.

    `pooled` (the web's per-request reader) takes one from this process's pool and close() gives it back:
    a pooled connection costs ~0.5 ms, a new one several (field notes).
    """
    if pooled:
        pool = _pool(url)
        return PooledConnection(pool.getconn(), pool)
    raw = psycopg.connect(url, autocommit=True)
    if readonly:
        _read_only(raw)
    return PgConnection(raw, url)


class PooledConnection(PgConnection):
    """A reader borrowed from the pool: close() returns it."""

    def __init__(self, raw: psycopg.Connection, pool: ConnectionPool) -> None:
        super().__init__(raw)
        self.pool = pool

    def close(self) -> None:
        """Give the connection back (the pool rolls back anything left open)."""
        self.pool.putconn(self.raw)


POOL_MAX = 10  # connections per web worker: its requests are short; a stream reads with its own
# How long a request waits for a connection: while no primary answers (a failover) it then fails, and the web
# answers 503 (vesper_web/db.py) instead of hanging for psycopg_pool's default 30 s.
POOL_WAIT_S = 5.0
_pools: dict[str, ConnectionPool] = {}


def _pool(url: str) -> ConnectionPool:
    """This process's pool of read-only connections to `url`, opened on first use (after gunicorn's fork)."""
    if url not in _pools:
        # check: a connection is tried before it is lent, so the ones a failover broke are replaced, not used.
        _pools[url] = ConnectionPool(
            url, min_size=1, max_size=POOL_MAX, kwargs={"autocommit": True}, configure=_read_only, open=True,
            check=ConnectionPool.check_connection, timeout=POOL_WAIT_S,
        )
    return _pools[url]


def _c_collated(ddl: str) -> str:
    """Every text column in the "C" collation: ordering, lower() and ILIKE as SQLite has them, whatever the locale."""
    return re.sub(r"\bTEXT\b", 'TEXT COLLATE "C"', ddl)


# The schema as of migration 7 of shared/store/schema.py, in one step.
SCHEMA = _c_collated(f"""
CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    first_seen DOUBLE PRECISION,
    last_seen DOUBLE PRECISION,
    liveness TEXT NOT NULL DEFAULT 'unknown' CHECK (liveness IN ('online', 'offline', 'unknown')),
    playback_active INTEGER NOT NULL DEFAULT 0,
    melody_uid TEXT,
    last_heartbeat TEXT,
    worst_rank INTEGER,
    alert_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX devices_liveness ON devices (liveness, last_seen);
CREATE INDEX devices_health ON devices (({health_sql()}), id);
CREATE INDEX devices_last_seen ON devices ((COALESCE(last_seen, 0)), id);
CREATE TABLE device_alerts (
    device_id TEXT NOT NULL,
    subsystem TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('WARNING', 'CRITICAL', 'FAILED')),
    message TEXT,
    updated_at DOUBLE PRECISION NOT NULL,
    ack_by TEXT,
    ack_at DOUBLE PRECISION,
    ack_note TEXT,
    PRIMARY KEY (device_id, subsystem)
);
CREATE TABLE events (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    ts DOUBLE PRECISION NOT NULL,
    type TEXT NOT NULL,
    severity TEXT NOT NULL,
    source_id TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX events_source ON events (source_id, id);
CREATE INDEX events_ts ON events (ts);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
CREATE TABLE delivered (mid INTEGER PRIMARY KEY, digest BYTEA NOT NULL, at DOUBLE PRECISION NOT NULL);
CREATE TABLE notify_groups (
    rule TEXT PRIMARY KEY, opened_at DOUBLE PRECISION NOT NULL, due_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE notify_items (
    rule TEXT NOT NULL,
    device_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('problem', 'resolved', 'event')),
    category TEXT NOT NULL,
    event_id BIGINT NOT NULL,
    line TEXT NOT NULL,
    PRIMARY KEY (rule, device_id, subject)
);
CREATE TABLE notify_told (
    rule TEXT NOT NULL,
    device_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    category TEXT NOT NULL,
    told_at DOUBLE PRECISION NOT NULL,
    line TEXT NOT NULL,
    acked INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (rule, device_id, subject)
);
CREATE TABLE notifications (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    channel TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'dropped')),
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at DOUBLE PRECISION NOT NULL,
    next_attempt_at DOUBLE PRECISION NOT NULL,
    sent_at DOUBLE PRECISION,
    last_error TEXT,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    notify_type TEXT NOT NULL,
    event_ids TEXT NOT NULL
);
CREATE INDEX notifications_queue ON notifications (channel, status, id);
CREATE TABLE registry (
    device_id TEXT PRIMARY KEY,
    name TEXT,
    site TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    notes TEXT,
    heartbeat_timeout_s DOUBLE PRECISION,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX registry_site ON registry (site);
CREATE TABLE ingest_commands (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    kind TEXT NOT NULL,
    device_id TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    args TEXT NOT NULL DEFAULT '{{}}'
);
CREATE TABLE device_tags (tag TEXT NOT NULL, device_id TEXT NOT NULL, PRIMARY KEY (tag, device_id));
CREATE INDEX device_tags_device ON device_tags (device_id);
CREATE TABLE tag_counts (tag TEXT PRIMARY KEY, n INTEGER NOT NULL);
CREATE TABLE alert_flaps (
    device_id TEXT NOT NULL,
    subsystem TEXT NOT NULL,
    changes TEXT NOT NULL,
    flapping INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (device_id, subsystem)
);
CREATE TABLE silences (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    device_id TEXT,
    tag TEXT,
    subsystem TEXT,
    starts_at DOUBLE PRECISION NOT NULL,
    ends_at DOUBLE PRECISION NOT NULL,
    comment TEXT,
    created_by TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX silences_ends ON silences (ends_at);
CREATE TABLE schema_version (version INTEGER NOT NULL);
""")
SCHEMA_AT = 7  # the migration of shared/store/schema.py that SCHEMA equals


def close_pools() -> None:
    """Close this process's pools (at exit, or when a test's database is about to go)."""
    while _pools:
        _pools.popitem()[1].close()
