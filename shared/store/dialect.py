"""The engines and what every store module asks of a connection's dialect, whichever engine it is.

Each engine is one module with a Dialect (engine.py): sqlite.py, postgres.py. connect() picks it from
the target (a path or a URL); after that each connection carries it as `conn.dialect`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shared.store import postgres, sqlite
from shared.store.engine import Dialect, read, write  # noqa: F401 - read and write: the store's transactions
from shared.store.postgres import PgConnection
from shared.store.sqlite import SqliteConnection

DIALECTS: tuple[Dialect, ...] = (postgres.POSTGRES, sqlite.SQLITE)  # the first that accepts the target opens it
Connection = SqliteConnection | PgConnection
# Locked, busy, disk I/O, a connection lost: the work can be tried again.
TRANSIENT: tuple[type[BaseException], ...] = tuple(e for d in DIALECTS for e in d.transient)
URL_SCHEMES = postgres.URL_SCHEMES


def dialect_for(target: str | Path) -> Dialect:
    """The dialect of the database at `target`: a file's path, or a URL one of the engines accepts."""
    for candidate in DIALECTS:
        if candidate.accepts(target):
            return candidate
    raise ValueError(f"no storage engine for {target}")


def caseless_like(conn: Connection) -> str:
    """The operator of a case-insensitive LIKE: ASCII case on both (PostgreSQL's columns are in the "C" collation)."""
    return conn.dialect.caseless_like


class StoreUnavailable(Exception):
    """The database could not do the work now (locked, busy, I/O); the whole transaction was rolled back."""


class LeadLost(BaseException):
    """The leader's fenced connection failed: the lock may be gone, so this process must write nothing more.

    A BaseException, like SystemExit: no handler meant for one bad message or a busy database may keep it.
    """


def connect(path: str | Path, readonly: bool = False, pooled: bool = False) -> Connection:
    """Open a file (WAL, a busy timeout) or a postgresql:// URL (`pooled`: a reader from the pool); autocommit."""
    return dialect_for(path).connect(path, readonly, pooled)  # type: ignore[return-value]


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


def new_event_ids(conn: Connection, n: int) -> list[int] | None:
    """n event ids taken in one round trip (PostgreSQL's sequence); None on SQLite, where each insert gives its own."""
    return conn.dialect.new_event_ids(conn, n)


def schema_version(conn: Connection) -> int:
    """The number of migrations applied."""
    return conn.dialect.schema_version(conn)


def set_schema_version(conn: Connection, number: int) -> None:
    """Record that migrations up to `number` are applied (inside the migrating transaction)."""
    conn.dialect.set_schema_version(conn, number)


def last_event_id(conn: Connection) -> int:
    """The highest event id committed (0 if none), or written by this connection's transaction; survives pruning."""
    return conn.dialect.last_event_id(conn)


def integrity_ok(conn: Connection) -> bool:
    """The database's own consistency check says ok (PostgreSQL keeps its own: always true here)."""
    return conn.dialect.integrity_ok(conn)
