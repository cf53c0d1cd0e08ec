"""The SQLite dialect: a file in WAL mode, BEGIN IMMEDIATE, PRAGMA user_version, multi-row VALUES for sets."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shared.store import search, sqlite_memstatus, sqlite_readers
from shared.store.engine import Dialect, Script, write
from shared.store.sets import pieces

BUSY_TIMEOUT_MS = 10_000
FAST_ALLOCATOR = sqlite_memstatus.statistics_off()  # before this process's first connection
MAX_VARIABLES = 30_000  # SQLite allows 32,766 per statement


class SqliteDialect(Dialect):
    """SQLite's constructs: the store's own SQL runs as written."""

    name = "sqlite"
    transient = (sqlite3.OperationalError,)  # locked, busy, disk I/O
    begin_write = "BEGIN IMMEDIATE"
    begin_read = "BEGIN"
    caseless_like = "LIKE"
    joined = "group_concat({}, ',')"
    skip_scan = True  # a report's incidents are read device by device, not grouped by a sort (medians.py)
    types = {"text": "TEXT", "real": "REAL", "int": "INTEGER", "bigint": "INTEGER", "blob": "BLOB",
             "serial": "INTEGER PRIMARY KEY AUTOINCREMENT"}  # fmt: skip

    def accepts(self, target: str | Path) -> bool:
        """Anything that is not a URL is a file's path."""
        return "://" not in str(target)

    def connect(self, target: str | Path, readonly: bool = False, pooled: bool = False) -> SqliteConnection:
        """Open the file (WAL, a busy timeout); `readonly` and `pooled`: a reader from this process's pool."""
        if readonly and pooled:
            return sqlite_readers.borrow(target, lambda: _open(target, True, PooledSqlite))  # type: ignore[return-value]
        return _open(target, readonly)

    def migrate(self, conn: Any, migrations: Sequence[Script]) -> None:
        """Apply the pending migrations, statement by statement, in one transaction."""
        with write(conn):
            version = self.schema_version(conn)
            for number, script in enumerate(migrations[version:], start=version + 1):
                for statement in self.statements(script):
                    conn.execute(statement)
                self.set_schema_version(conn, number)

    def schema_version(self, conn: Any) -> int:
        """PRAGMA user_version."""
        return int(conn.execute("PRAGMA user_version").fetchone()[0])

    def set_schema_version(self, conn: Any, number: int) -> None:
        """PRAGMA user_version, inside the migrating transaction."""
        conn.execute(f"PRAGMA user_version = {int(number)}")

    def last_event_id(self, conn: Any) -> int:
        """sqlite_sequence keeps the highest id AUTOINCREMENT gave, pruned or not."""
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        return int(row[0]) if row else 0

    def integrity_ok(self, conn: Any) -> bool:
        """PRAGMA integrity_check."""
        return conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    def run_set(self, conn: Any, sql: str, types: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Multi-row VALUES, in pieces of power-of-two sizes under SQLite's limit of variables."""
        marks = "(" + ", ".join("?" * len(types)) + ")"
        start = 0
        for size in pieces(len(rows), MAX_VARIABLES // len(types)):
            chunk = rows[start : start + size]
            conn.execute(sql.format(rows="VALUES " + ", ".join([marks] * size)), [v for row in chunk for v in row])
            start += size

    def reader_beside(self, conn: Any) -> SqliteConnection | None:
        """The file opened again, its read begun now (SQLite shares no snapshot: a moment after `conn`'s)."""
        path = conn.execute("PRAGMA database_list").fetchone()[2]
        if not path:
            return None
        other: SqliteConnection = _open(path, True)
        try:
            other.execute(self.begin_read)
            other.execute("SELECT 1 FROM sqlite_master LIMIT 1")  # a deferred read takes its snapshot at its first read
        except BaseException:
            other.close()  # a connection half set up is not left open
            raise
        return other

    def columns(self, conn: Any) -> dict[str, list[str]]:
        """sqlite_master's tables (not SQLite's sqlite_* ones, nor q's index: search.py) and their columns."""
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        names = [name for (name,) in conn.execute(sql).fetchall() if not search.engine_only(name)]
        return {t: [row[1] for row in conn.execute(f"PRAGMA table_info({quoted(t)})").fetchall()] for t in names}


SQLITE = SqliteDialect()


def quoted(name: str) -> str:
    """An identifier quoted for either engine (the schema's names are plain words; this keeps them so)."""
    return '"' + name.replace('"', '""') + '"'


class SqliteConnection(sqlite3.Connection):
    """sqlite3's connection, carrying its dialect."""

    dialect = SQLITE
    lease = None  # only a PostgreSQL leader's connection has one (leader.Lease)


class PooledSqlite(sqlite_readers.PooledReader, SqliteConnection):
    """A reader from this process's pool, carrying its dialect."""


def _open(path: str | Path, readonly: bool, factory: type[SqliteConnection] = SqliteConnection) -> Any:
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
