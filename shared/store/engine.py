"""What one storage engine provides: a Dialect object, carried by each of its connections as `conn.dialect`.

The store writes its statements once, in the SQL both engines run; whatever differs (placeholders,
transactions, sets of rows, the schema's bookkeeping, DDL type names, errors) is asked of the dialect.
Adding an engine is one module with a Dialect subclass and a connection that carries it (docs/architecture.md).
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

Script = str | Mapping[str, str]  # a migration: portable SQL, or each engine's own by Dialect.name (schema.py's 10)


class Connection(Protocol):
    """What the store calls on a connection of any engine (sqlite3's execute and executemany)."""

    dialect: Dialect

    def execute(self, sql: str, args: Any = ..., /) -> Any:
        """Run one statement; the cursor answers fetchone, fetchall, rowcount and iteration."""

    def executemany(self, sql: str, rows: Any, /) -> Any:
        """Run one statement per row."""

    def close(self) -> None:
        """Close the connection (or give it back to its pool)."""


class Dialect(ABC):
    """One engine's differences: the class attributes say, the methods do (each takes the connection)."""

    name: str  # "sqlite", "postgresql"
    transient: tuple[type[BaseException], ...]  # errors after which the work may be tried again
    begin_write: str  # the statement that opens a write transaction
    begin_read: str  # the one that opens a read transaction seeing one snapshot
    caseless_like: str  # the operator of a LIKE that ignores ASCII case
    joined: str  # the aggregate joining a group's texts with commas ({} is the text)
    skip_scan: bool  # a report reads its incidents device by device (episodes_incidents), not grouped by a sort
    types: Mapping[str, str]  # tables.py's column types (text, real, int, bigint, blob, serial) in this engine's DDL

    @abstractmethod
    def accepts(self, target: str | Path) -> bool:
        """Whether `target` (a path or a URL) names a database of this engine."""

    @abstractmethod
    def connect(self, target: str | Path, readonly: bool, pooled: bool) -> Connection:
        """A connection in autocommit mode (transactions explicit); `pooled`: a reader borrowed from a pool."""

    @abstractmethod
    def migrate(self, conn: Connection, migrations: Sequence[Script]) -> None:
        """Bring the schema up to date with the numbered migrations (schema.py), in one transaction."""

    @abstractmethod
    def schema_version(self, conn: Connection) -> int:
        """The number of migrations applied."""

    @abstractmethod
    def set_schema_version(self, conn: Connection, number: int) -> None:
        """Record that migrations up to `number` are applied (inside the migrating transaction)."""

    @abstractmethod
    def last_event_id(self, conn: Connection) -> int:
        """The highest event id committed (0 if none), or written by this connection's transaction; survives pruning."""

    @abstractmethod
    def run_set(self, conn: Connection, sql: str, types: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Run `sql` once over many rows, which go where it says `{rows}` (sets.py says how)."""

    @abstractmethod
    def columns(self, conn: Connection) -> dict[str, list[str]]:
        """The database's own tables (the engine's internal ones left out) and their column names, in order."""

    def new_event_ids(self, conn: Connection, n: int) -> list[int] | None:
        """n event ids taken in one round trip, or None where each insert gives its own."""
        return None

    def integrity_ok(self, conn: Connection) -> bool:
        """The database's own consistency check says ok (true where the engine keeps its own)."""
        return True

    def reader_beside(self, conn: Connection) -> Connection | None:
        """A second read-only connection to `conn`'s database, in a read transaction on `conn`'s snapshot where the
        engine can share it (beside.py); None where the database cannot be opened again."""
        return None

    def index_term(self, expression: str) -> str:
        """An expression as a term of CREATE INDEX (some engines want it in parentheses)."""
        return expression

    def statements(self, script: Script) -> list[str]:
        """A migration's statements for this engine, split at each ';' ending one (a trigger's body keeps its own)."""
        text = script if isinstance(script, str) else script[self.name]
        found, piece = [], ""
        for part in text.split(";"):
            piece += part + ";"
            if sqlite3.complete_statement(piece):
                if piece.strip(" \n;"):
                    found.append(piece.strip()[:-1])
                piece = ""
        return found


@contextmanager
def write(conn: Connection) -> Iterator[Connection]:
    """One write transaction (BEGIN IMMEDIATE on SQLite, so two writers never deadlock on an upgrade)."""
    conn.execute(conn.dialect.begin_write)
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@contextmanager
def read(conn: Connection) -> Iterator[Connection]:
    """One short read transaction, so several queries see one snapshot."""
    conn.execute(conn.dialect.begin_read)
    try:
        yield conn
    finally:
        conn.execute("COMMIT")
