"""The PostgreSQL fixture (tests/pg.py): a real 15+ server, a fresh database per test, the settings issue 13 needs."""

from __future__ import annotations

import re
import time

import psycopg
import pytest

from tests.pg import Postgres

seen_databases: set[str] = set()


def test_the_server_is_postgresql_15_or_newer(pg_server: Postgres, pg_url: str) -> None:
    """`SELECT version()` answers from our own server (never the system cluster on 5432)."""
    with psycopg.connect(pg_url) as conn:
        (version,) = conn.execute("SELECT version()").fetchone()
        assert version.startswith("PostgreSQL ")
        assert conn.info.server_version >= 150000
    assert pg_server.port != 5432
    assert re.fullmatch(rf"postgresql://vesper@127\.0\.0\.1:{pg_server.port}/test_\d+", pg_url)


@pytest.mark.parametrize("turn", ["first", "second"])
def test_each_test_gets_a_fresh_empty_database(pg_url: str, turn: str) -> None:
    """Each test sees no tables, and leaves one behind that the next test must not see."""
    with psycopg.connect(pg_url) as conn:
        (name,) = conn.execute("SELECT current_database()").fetchone()
        tables = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
        conn.execute("CREATE TABLE left_behind (turn text)")
    assert tables == []
    assert name not in seen_databases
    seen_databases.add(name)


def test_a_row_roundtrips_through_a_new_table(pg_url: str) -> None:
    """A committed row is read back by another connection, types intact."""
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE devices (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text, up boolean)")
        insert = "INSERT INTO devices (name, up) VALUES (%s, %s) RETURNING id"
        (row_id,) = conn.execute(insert, ("bell-1", True)).fetchone()
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT id, name, up FROM devices").fetchall() == [(row_id, "bell-1", True)]


def test_idle_timeouts_can_be_set_per_session(pg_url: str) -> None:
    """Both timeouts are settable per connection, by SET or by libpq `options` (the standby's fencing needs both)."""
    options = "-c idle_session_timeout=3s -c idle_in_transaction_session_timeout=3s"
    with psycopg.connect(pg_url, options=options) as conn:
        assert conn.execute("SHOW idle_session_timeout").fetchone() == ("3s",)
        assert conn.execute("SHOW idle_in_transaction_session_timeout").fetchone() == ("3s",)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("SET idle_session_timeout = '2s'")
        conn.execute("SET idle_in_transaction_session_timeout = 1500")
        assert conn.execute("SHOW idle_session_timeout").fetchone() == ("2s",)
        assert conn.execute("SHOW idle_in_transaction_session_timeout").fetchone() == ("1500ms",)
    with psycopg.connect(pg_url) as other:  # per session: a new connection still has the defaults
        assert other.execute("SHOW idle_session_timeout").fetchone() == ("0",)


@pytest.mark.parametrize(
    ("setting", "in_transaction", "error"),
    [
        # SQLSTATE 25P03 is an InternalError, not an OperationalError: catch psycopg.Error to see both.
        ("idle_in_transaction_session_timeout", True, psycopg.errors.IdleInTransactionSessionTimeout),
        ("idle_session_timeout", False, psycopg.errors.IdleSessionTimeout),
    ],
    ids=["in-transaction", "between-transactions"],
)
def test_the_server_ends_an_idle_session(
    setting: str, in_transaction: bool, error: type[Exception], pg_url: str
) -> None:
    """The server enforces each timeout by terminating the session (a real, short wait on the server's clock)."""
    with psycopg.connect(pg_url, autocommit=not in_transaction, options=f"-c {setting}=100ms") as conn:
        conn.execute("SELECT 1")  # without autocommit this opens the transaction that then sits idle
        time.sleep(0.4)
        with pytest.raises(error):
            conn.execute("SELECT 1")
        assert conn.closed
