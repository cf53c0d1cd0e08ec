"""Where SQLite-only constructs live, so a PostgreSQL dialect is one more module beside this one."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

Connection = sqlite3.Connection
TRANSIENT = (sqlite3.OperationalError,)  # locked, busy, disk I/O: the work can be tried again
BUSY_TIMEOUT_MS = 10_000
CASELESS_LIKE = "LIKE"  # SQLite's LIKE ignores ASCII case (PostgreSQL's is ILIKE)


class StoreUnavailable(Exception):
    """The database could not do the work now (locked, busy, I/O); the whole transaction was rolled back."""


def connect(path: str | Path, readonly: bool = False) -> Connection:
    """Open the database in WAL mode with a busy timeout; autocommit, explicit transactions."""
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
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
def write(conn: Connection) -> Iterator[Connection]:
    """One write transaction, taken with BEGIN IMMEDIATE so two writers never deadlock on an upgrade."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@contextmanager
def read(conn: Connection) -> Iterator[Connection]:
    """One short read transaction, so several queries see one snapshot."""
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        conn.execute("COMMIT")


def schema_version(conn: Connection) -> int:
    """The number of migrations applied."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def set_schema_version(conn: Connection, number: int) -> None:
    """Record that migrations up to `number` are applied (inside the migrating transaction)."""
    conn.execute(f"PRAGMA user_version = {int(number)}")


def last_event_id(conn: Connection) -> int:
    """The highest event id ever given (0 if none); survives pruning."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
    return int(row[0]) if row else 0


def integrity_ok(conn: Connection) -> bool:
    """The database's own consistency check says ok."""
    return conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
