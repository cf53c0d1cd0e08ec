"""A read beside another (shared/store/beside.py): a second connection in a native thread, on the first's snapshot.

Runs on SQLite and (VESPER_TEST_DATABASE=postgresql) PostgreSQL: the second connection reads what the first one's
snapshot holds, not a row committed after the first began (PostgreSQL: after; SQLite: after the second began).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared import store
from shared.store.beside import Beside


@pytest.fixture
def db(db_path: Path) -> Iterator[store.Connection]:
    conn = store.open_store(db_path)
    with store.write(conn):
        conn.execute("INSERT INTO devices (id, first_seen) VALUES ('a', 1.0)")
    yield conn
    conn.close()


def devices(conn: store.Connection) -> tuple[int, int, int]:
    """How many devices this connection sees, in which thread, on which connection."""
    return conn.execute("SELECT COUNT(*) FROM devices").fetchone()[0], threading.get_ident(), id(conn)


def test_runs_on_another_connection_in_another_thread(db: store.Connection) -> None:
    with store.read(db):
        count, thread, conn = Beside(db, devices).result()
    assert count == 1
    assert thread != threading.get_ident() and conn != id(db)


def test_reads_the_snapshot_not_a_later_commit(db: store.Connection, db_path: Path) -> None:
    writer, writer_done = store.open_store(db_path), threading.Event()
    try:
        with store.read(db):
            assert devices(db)[0] == 1  # the first connection's snapshot is taken
            pending = Beside(db, lambda other: (writer_done.wait(30), devices(other))[1])
            with store.write(writer):
                writer.execute("INSERT INTO devices (id, first_seen) VALUES ('b', 2.0)")
            writer_done.set()
            assert pending.result()[0] == 1
        assert devices(db)[0] == 2  # a new read sees it
    finally:
        writer.close()


def test_an_error_is_raised_by_result_and_the_connection_closed(db: store.Connection) -> None:
    seen: list[store.Connection] = []

    def failing(other: store.Connection) -> None:
        seen.append(other)
        raise ValueError("no such thing")

    with store.read(db):
        pending = Beside(db, failing)
        with pytest.raises(ValueError, match="no such thing"):
            pending.result()
    with pytest.raises(Exception):  # noqa: B017 - closed: sqlite3.ProgrammingError or psycopg's OperationalError
        seen[0].execute("SELECT 1")


@pytest.mark.sqlite_only
def test_a_database_in_memory_runs_the_work_here() -> None:
    conn = store.open_store(":memory:")
    try:
        with store.read(conn):
            count, thread, used = Beside(conn, devices).result()
        assert (count, thread, used) == (0, threading.get_ident(), id(conn))
    finally:
        conn.close()


def test_a_commit_before_the_second_opens(db: store.Connection, db_path: Path) -> None:
    """Committed after the first read began, before the second opened: PostgreSQL's second read shares the first's
    snapshot (not seen); SQLite's begins its own when it opens (seen: beside.py says so)."""
    writer = store.open_store(db_path)
    try:
        with store.read(db):
            assert devices(db)[0] == 1
            with store.write(writer):
                writer.execute("INSERT INTO devices (id, first_seen) VALUES ('b', 2.0)")
            assert Beside(db, devices).result()[0] == (1 if db.dialect.name == "postgresql" else 2)
    finally:
        writer.close()


def test_leaving_the_block_waits_and_closes_without_result(db: store.Connection) -> None:
    seen: list[store.Connection] = []
    release = threading.Event()

    def slow(other: store.Connection) -> int:
        seen.append(other)
        release.wait(30)
        return devices(other)[0]

    with pytest.raises(KeyError), store.read(db), Beside(db, slow):
        release.set()
        raise KeyError("the report failed before it asked")
    with pytest.raises(Exception):  # noqa: B017 - closed, whichever engine's error says so
        seen[0].execute("SELECT 1")


def test_no_second_connection_runs_the_work_when_asked(db: store.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(conn: store.Connection) -> None:
        raise db.dialect.transient[0]("too many connections")

    monkeypatch.setattr(type(db.dialect), "reader_beside", lambda self, conn: refused(conn))
    with store.read(db):
        pending = Beside(db, devices)
        assert not pending.started
        count, thread, used = pending.result()
    assert (count, thread, used) == (1, threading.get_ident(), id(db))
