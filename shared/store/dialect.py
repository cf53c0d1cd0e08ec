"""Where the engines differ: SQLite's constructs here, PostgreSQL's in postgres.py, chosen by the connection."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shared.store import postgres, sqlite_readers
from shared.store.postgres import PgConnection

Connection = sqlite3.Connection | PgConnection
# Locked, busy, disk I/O, a connection lost: the work can be tried again.
TRANSIENT = (sqlite3.OperationalError, *postgres.TRANSIENT)
BUSY_TIMEOUT_MS = 10_000
URL_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(conn: Connection) -> bool:
    """True for a PostgreSQL connection."""
    return isinstance(conn, PgConnection)


def caseless_like(conn: Connection) -> str:
    """The operator of a case-insensitive LIKE: ASCII case on both (PostgreSQL's columns are in the "C" collation)."""
    return "ILIKE" if is_postgres(conn) else "LIKE"


class StoreUnavailable(Exception):
    """The database could not do the work now (locked, busy, I/O); the whole transaction was rolled back."""


class LeadLost(BaseException):
    """The leader's fenced connection failed: the lock may be gone, so this process must write nothing more.

    A BaseException, like SystemExit: no handler meant for one bad message or a busy database may keep it.
    """


def connect(path: str | Path, readonly: bool = False, pooled: bool = False) -> Connection:
    """Open a file (WAL, a busy timeout) or a postgresql:// URL (`pooled`: a reader from the pool); autocommit."""
    if str(path).startswith(URL_SCHEMES):
        return postgres.connect(str(path), readonly, pooled)
    if readonly and pooled:
        return sqlite_readers.borrow(path, lambda: _sqlite(path, True, sqlite_readers.PooledReader))
    return _sqlite(path, readonly)


def _sqlite(path: str | Path, readonly: bool, factory: type[sqlite3.Connection] = sqlite3.Connection) -> Any:
    if readonly:
        conn = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False, factory=factory
        )
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, factory=factory)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
    return conn


@contextmanager
def guarded() -> Iterator[None]:
    """Database errors that may pass (locked, busy, I/O) become StoreUnavailable."""
    try:
        yield
    except TRANSIENT as exc:
        raise StoreUnavailable(str(exc)) from exc


@contextmanager
def fenced() -> Iterator[None]:
    """The leader's guard: any failure of its connection ends the lead (the process exits; a standby leads)."""
    try:
        yield
    except (*TRANSIENT, StoreUnavailable) as exc:
        raise LeadLost(str(exc)) from exc


@contextmanager
def write(conn: Connection) -> Iterator[Connection]:
    """One write transaction, taken with BEGIN IMMEDIATE so two SQLite writers never deadlock on an upgrade."""
    conn.execute("BEGIN" if is_postgres(conn) else "BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def new_event_ids(conn: Connection, n: int) -> list[int] | None:
    """n event ids taken in one round trip (PostgreSQL's sequence); None on SQLite, where each insert gives its own."""
    if not is_postgres(conn) or n == 0:
        return None
    rows = conn.execute("SELECT nextval('events_id_seq') FROM generate_series(1, ?)", (n,)).fetchall()
    return sorted(int(r[0]) for r in rows)


@contextmanager
def read(conn: Connection) -> Iterator[Connection]:
    """One short read transaction, so several queries see one snapshot."""
    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ" if is_postgres(conn) else "BEGIN")
    try:
        yield conn
    finally:
        conn.execute("COMMIT")


def schema_version(conn: Connection) -> int:
    """The number of migrations applied."""
    if is_postgres(conn):
        if conn.execute("SELECT to_regclass('schema_version')").fetchone()[0] is None:
            return 0
        return int(conn.execute("SELECT version FROM schema_version").fetchone()[0])
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def set_schema_version(conn: Connection, number: int) -> None:
    """Record that migrations up to `number` are applied (inside the migrating transaction)."""
    if is_postgres(conn):
        conn.execute("DELETE FROM schema_version")
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (int(number),))
        return
    conn.execute(f"PRAGMA user_version = {int(number)}")


def last_event_id(conn: Connection) -> int:
    """The highest event id committed (0 if none), or written by this connection's transaction; survives pruning.

    Not PostgreSQL's sequence: it moves at insert, so a reader starting from it would take the ids of
    a batch still being written as already seen. The highest pruned id is kept in `meta` by prune_events.
    """
    if is_postgres(conn):
        row = conn.execute(
            "SELECT GREATEST((SELECT max(id) FROM events),"
            " (SELECT CAST(value AS BIGINT) FROM meta WHERE key = 'events_pruned_upto'))"
        ).fetchone()
        return int(row[0] or 0)
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
    return int(row[0]) if row else 0


def integrity_ok(conn: Connection) -> bool:
    """The database's own consistency check says ok (PostgreSQL keeps its own: always true here)."""
    if is_postgres(conn):
        return True
    return conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
