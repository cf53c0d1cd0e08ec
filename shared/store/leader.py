"""The leader lock of standby ingests (§10): a session advisory lock on the connection that carries every write.

Advisory locks are per database, so one key serves every installation. The lock lives as long as the
session: a leader killed, or cut off by the server's idle timeouts when it hangs, loses it with its
connection, and with it the means to commit anything more (the fence).
"""

from __future__ import annotations

import psycopg

from shared.store.postgres import PgConnection

LOCK_KEY = 0x5645_5350  # "VESP"


def name_session(conn: PgConnection, name: str) -> None:
    """Show `name` as this session's application_name (the standbys' log names the leader by it)."""
    conn.execute("SELECT set_config('application_name', ?, false)", (name[:63],))


def try_take(conn: PgConnection, wait_s: float) -> bool:
    """Wait up to `wait_s` for the lock on this session; True once it is held (until the session ends)."""
    conn.execute(f"SET lock_timeout = {max(1, int(wait_s * 1000))}")
    try:
        conn.execute("SELECT pg_advisory_lock(?)", (LOCK_KEY,))
    except psycopg.errors.LockNotAvailable:
        return False
    finally:
        conn.execute("SET lock_timeout = 0")
    return True


def fence(conn: PgConnection, timeout_s: float) -> None:
    """Have the server end this session when it sits idle, in a transaction or not, for `timeout_s` (a hung leader).

    The server arms those timeouts when it answers a Sync, which a client hung inside a pipeline
    never sent: so this connection does not pipeline (its sets are single statements: sets.py).
    """
    conn.pipelining = False
    ms = max(1, int(timeout_s * 1000))
    conn.execute(f"SET idle_session_timeout = {ms}")
    conn.execute(f"SET idle_in_transaction_session_timeout = {ms}")


def holder(conn: PgConnection) -> str | None:
    """The application_name of the session that holds the lock, if any."""
    row = conn.execute(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0 AND l.objid = ? AND l.objsubid = 1",
        (LOCK_KEY,),
    ).fetchone()
    return row[0] if row else None
