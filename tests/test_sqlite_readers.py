"""The web's pooled SQLite readers: reused, always current, read-only, and never of a file that is gone."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from shared import store
from shared.store import sqlite_readers


def reader(db: Path) -> store.Connection:
    """One request's reader, as the web's get_db takes it."""
    return store.connect(db, readonly=True, pooled=True)


def test_a_returned_reader_is_the_next_request_s_and_sees_every_commit(tmp_path: Path) -> None:
    db = tmp_path / "v.db"
    writer = store.open_store(db)
    first = reader(db)
    first.close()
    for n in range(1, 21):
        with store.write(writer):
            store.mark_alive(writer, f"bell-{n}", float(n))
        conn = reader(db)
        assert conn is first
        assert len(store.devices(conn)) == n
        conn.close()
    writer.close()


def test_a_transaction_left_open_is_rolled_back_on_return(tmp_path: Path) -> None:
    db = tmp_path / "v.db"
    writer = store.open_store(db)
    conn = reader(db)
    conn.execute("BEGIN")
    assert conn.execute("SELECT count(*) FROM devices").fetchone()[0] == 0  # the snapshot is taken
    conn.close()  # a request that failed mid-read
    with store.write(writer):
        store.mark_alive(writer, "bell-1", 1.0)
    again = reader(db)
    assert again is conn and not again.in_transaction
    assert [d["id"] for d in store.devices(again)] == ["bell-1"]
    again.close()
    writer.close()


def test_a_pooled_reader_cannot_write(tmp_path: Path) -> None:
    db = tmp_path / "v.db"
    store.open_store(db).close()
    conn = reader(db)
    with pytest.raises(sqlite3.OperationalError, match="readonly"), store.write(conn):
        store.mark_alive(conn, "bell-1", 1.0)
    conn.close()


def test_a_replaced_file_gets_a_fresh_reader(tmp_path: Path) -> None:
    db = tmp_path / "v.db"
    old = store.open_store(db)
    with store.write(old):
        store.mark_alive(old, "old-bell", 1.0)
    old.close()
    stale = reader(db)
    stale.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    new = store.open_store(db)
    with store.write(new):
        store.mark_alive(new, "new-bell", 1.0)
    conn = reader(db)
    assert conn is not stale
    assert [d["id"] for d in store.devices(conn)] == ["new-bell"]
    conn.close()
    new.close()


def test_the_pool_keeps_at_most_its_cap_idle(tmp_path: Path) -> None:
    db = tmp_path / "v.db"
    store.open_store(db).close()
    many = [reader(db) for _ in range(sqlite_readers.POOL_MAX + 5)]
    assert len({id(c) for c in many}) == len(many)  # each request in flight has its own
    for conn in many:
        conn.close()
    kept = [reader(db) for _ in range(sqlite_readers.POOL_MAX + 5)]
    assert len({id(c) for c in kept} & {id(c) for c in many}) == sqlite_readers.POOL_MAX
    for conn in kept:
        conn.close()
