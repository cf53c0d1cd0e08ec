"""Copying a SQLite database into an empty PostgreSQL one, ids kept (shared/copydb.py is its command line)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg

from shared.events import storable_text
from shared.store.dialect import Connection, last_event_id, read, write
from shared.store.postgres import POSTGRES
from shared.store.sqlite import SQLITE, quoted
from shared.store.writes import set_meta

CHUNK = 5_000  # rows per read from SQLite and per executemany into PostgreSQL
SET_ONLY_BY_MIGRATE = frozenset({"schema_version"})  # PostgreSQL's version table; SQLite keeps PRAGMA user_version
PRUNED_UPTO = "events_pruned_upto"  # meta: the highest event id pruned (writes.prune_events; last_event_id reads it)


class Mismatch(Exception):
    """The two sides disagree: a table or column PostgreSQL's schema lacks, or an event id it would give again."""


class NotEmpty(Exception):
    """The target already holds Vesper rows: a copy would mix two databases' ids."""

    def __init__(self, tables: list[str]) -> None:
        super().__init__(f"the PostgreSQL database already holds rows in {', '.join(tables)}")
        self.tables = tables


ERRORS = (sqlite3.Error, psycopg.Error, Mismatch)  # what a copy may fail with: reported in one line


@dataclass
class Copied:
    """What a copy did: rows per table (in the order copied) and each identity sequence's next id."""

    rows: dict[str, int] = field(default_factory=dict)
    next_ids: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Rows copied in all."""
        return sum(self.rows.values())


def tables(src: Connection) -> dict[str, list[str]]:
    """The SQLite database's own tables and their columns (PostgreSQL's version table is migrate's)."""
    return {t: names for t, names in src.dialect.columns(src).items() if t not in SET_ONLY_BY_MIGRATE}


def holding_rows(dst: Connection, names: list[str]) -> list[str]:
    """Those of the named PostgreSQL tables that hold at least one row (the web's session key does not count)."""
    where = {"meta": " WHERE key <> 'session_key'"}
    sql = "SELECT EXISTS (SELECT 1 FROM {}{})"
    return [t for t in names if dst.execute(sql.format(quoted(t), where.get(t, ""))).fetchone()[0]]


def chunks(src: Connection, table: str, names: list[str], size: int = CHUNK) -> Iterator[list[tuple[Any, ...]]]:
    """The table's rows, `size` at a time, in rowid order (ids ascending where the id is the rowid)."""
    cur = src.execute(f"SELECT {', '.join(map(quoted, names))} FROM {quoted(table)} ORDER BY rowid")
    while batch := cur.fetchmany(size):
        yield batch


def insert_rows(dst: Connection, table: str, names: list[str], rows: list[tuple[Any, ...]]) -> None:
    """Insert rows as they are, ids included (identity columns are BY DEFAULT, so a given id is taken)."""
    marks = ", ".join("?" * len(names))
    rows = [tuple(storable_text(v) if isinstance(v, str) else v for v in row) for row in rows]  # a NUL of old
    dst.executemany(f"INSERT INTO {quoted(table)} ({', '.join(map(quoted, names))}) VALUES ({marks})", rows)


def identity_columns(dst: Connection) -> dict[str, str]:
    """PostgreSQL's tables with an identity column, and that column (events, notifications, …: their ids)."""
    sql = (
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND is_identity = 'YES' ORDER BY table_name"
    )
    return dict(dst.execute(sql).fetchall())


def highest_id(src: Connection, table: str, column: str) -> int:
    """The highest id SQLite ever gave in the table: sqlite_sequence keeps it after pruning, MAX(id) if it is lower."""
    has_sequence = src.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").fetchone()
    seq = src.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone() if has_sequence else None
    top = src.execute(f"SELECT MAX({quoted(column)}) FROM {quoted(table)}").fetchone()[0]
    return max(int(seq[0]) if seq else 0, int(top or 0))


def set_next_id(dst: Connection, table: str, column: str, highest: int) -> int:
    """Set the identity's sequence so the next row gets highest + 1 (1 if none was given); returns that id."""
    sql = "SELECT setval(pg_get_serial_sequence(?, ?), ?, ?)"
    dst.execute(sql, (quoted(table), column, max(highest, 1), highest > 0))
    return highest + 1


def keep_last_event_id(src: Connection, dst: Connection) -> None:
    """PostgreSQL's last_event_id made SQLite's: event ids given and since deleted are recorded as pruned (meta).

    A reader (the web's stream) must never see an id again that SQLite gave before the move.
    """
    given = last_event_id(src)
    if last_event_id(dst) < given:
        set_meta(dst, PRUNED_UPTO, str(given))
    if last_event_id(dst) < given:
        raise Mismatch(f"PostgreSQL's last event id is {last_event_id(dst)}, below SQLite's {given}")


def copy_table(
    src: Connection, dst: Connection, table: str, names: list[str], there: list[str], size: int = CHUNK
) -> int:
    """Copy one table's rows, its columns `names` into the target's `there`; returns how many."""
    if not there:
        raise Mismatch(f"PostgreSQL's schema has no table {table}")
    missing = sorted(set(names) - set(there))
    if missing:
        raise Mismatch(f"PostgreSQL's {table} lacks {', '.join(missing)}")
    copied = 0
    for rows in chunks(src, table, names, size):
        insert_rows(dst, table, names, rows)
        copied += len(rows)
    return copied


def copy_all(
    src: Connection, dst: Connection, done: Callable[[str, int], None] = lambda table, n: None, size: int = CHUNK
) -> Copied:
    """Copy every table of `src` (SQLite, one snapshot) into `dst` (PostgreSQL, migrated) in ONE transaction.

    Refuses with NotEmpty, before writing anything, if any of those tables already holds a row there;
    any failure rolls the whole copy back, so the target stays empty. `done(table, rows)` after each table.
    """
    assert src.dialect is SQLITE and dst.dialect is POSTGRES, "the copy goes from SQLite to PostgreSQL"
    copied = Copied()
    with read(src), write(dst):
        names, there = tables(src), dst.dialect.columns(dst)
        full = holding_rows(dst, [t for t in names if t in there])
        if full:
            raise NotEmpty(full)
        for table in sorted(names):
            try:
                copied.rows[table] = copy_table(src, dst, table, names[table], there.get(table, []), size)
            except ERRORS as exc:
                exc.add_note(f"while copying {table}")
                raise
            done(table, copied.rows[table])
        for table, column in identity_columns(dst).items():
            if table in copied.rows:
                copied.next_ids[table] = set_next_id(dst, table, column, highest_id(src, table, column))
        keep_last_event_id(src, dst)
    return copied
