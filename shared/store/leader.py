"""The leader lock of standby ingests (§10): a session advisory lock on the connection that carries every write.

Advisory locks are per database, so one key serves every installation. The lock lives as long as the
session: a leader killed, or cut off by the server's idle timeouts when it hangs, loses it with its
connection, and with it the means to commit anything more (the fence).

A session lost to a failover (§16: the primary killed, the replica promoted) is not the end of the lead:
the Lease opens a new session on whichever host is now the primary and takes the lock again, and goes on
only if the database still holds exactly what this leader committed (its stamp, below). Otherwise, or if
another ingest holds the lock, or no primary answers within GIVE_UP_S, it raises LeadLost: the process
exits and, restarted, waits as a standby.
"""

from __future__ import annotations

import logging
import time
import uuid

import psycopg

from shared.store.dialect import TRANSIENT, LeadLost
from shared.store.postgres import PgConnection
from shared.store.writes import get_meta, set_meta

log = logging.getLogger(__name__)

LOCK_KEY = 0x5645_5350  # "VESP"
STAMP_KEY = "leader_stamp"  # meta: "<lease token>:<count>", written by each of the leader's transactions
STEP_S = 0.5  # how long a lease waits for the lock on its new session (held: another ingest leads now)
RETRY_S = 1.0  # between attempts to reach a primary
CONNECT_TIMEOUT_S = 10  # per host, unless the URL names one: a host that does not answer at all (not refused)
GIVE_UP_S = 60.0  # no primary for this long: exit (a supervisor's restart waits as a standby, and SIGTERM works)


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


class Lease:
    """The leader lock as this process holds it, on `conn`'s session or, after a failover, on a new one.

    Every transaction of the leader stamps meta `leader_stamp` with this lease's token and count just before
    its COMMIT (writer.py). After a failover the stamp says whether the new primary holds every transaction
    this leader committed and nothing another leader did, and whether a COMMIT whose answer was lost landed.
    """

    def __init__(self, conn: PgConnection, name: str, timeout_s: float) -> None:
        self.conn, self.name, self.timeout_s = conn, name, timeout_s
        self.token = uuid.uuid4().hex
        self.done: int | None = None  # this lease's transactions known committed (None: none stamped yet)
        self.doubt: int | None = None  # the one being committed
        conn.lease = self

    def stamp(self, conn: PgConnection) -> None:
        """Mark the caller's transaction as this lease's next (the last statement before its COMMIT)."""
        self.doubt = (self.done or 0) + 1
        set_meta(conn, STAMP_KEY, f"{self.token}:{self.doubt}")

    def committed(self) -> None:
        """The stamped transaction's COMMIT returned."""
        self.done, self.doubt = self.doubt, None

    def landed(self) -> bool:
        """After a transaction failed: whether its COMMIT landed all the same (read on a session holding the lock)."""
        if self.doubt is None:
            return False
        landed = get_meta(self.conn, STAMP_KEY) == f"{self.token}:{self.doubt}"  # recovers a lost session first
        if landed:
            log.warning("the COMMIT whose answer was lost with the session had landed: kept, not applied again")
            self.done = self.doubt
        self.doubt = None
        return landed

    def recover(self) -> None:
        """The session is gone: hold the lock on a new one of the primary (tried until GIVE_UP_S), or raise LeadLost."""
        log.warning("the database session that holds the leader lock is lost; taking the lock again on a new one")
        started = time.monotonic()
        while True:
            try:
                self._take_again()
                break
            except TRANSIENT as exc:
                if time.monotonic() - started > GIVE_UP_S:
                    raise LeadLost(f"no primary answered for {GIVE_UP_S:.0f} s: {exc}") from exc
            time.sleep(RETRY_S)
        log.warning("leading again on a new session, %.1f s after the last was lost", time.monotonic() - started)

    def _take_again(self) -> None:
        """One attempt: a new session (libpq finds the read-write host), the lock, the fence, the stamp checked."""
        bounded = {} if "connect_timeout" in self.conn.url else {"connect_timeout": CONNECT_TIMEOUT_S}
        raw = psycopg.connect(self.conn.url, autocommit=True, **bounded)  # type: ignore[arg-type]
        self.conn.raw.close()
        self.conn.raw, self.conn.in_transaction, self.conn.pipelining = raw, False, True
        name_session(self.conn, self.name)
        if not try_take(self.conn, STEP_S):
            raise LeadLost(f"{holder(self.conn) or 'another session'} holds the leader lock now")
        fence(self.conn, self.timeout_s)
        self._check_stamp()

    def _check_stamp(self) -> None:
        """The database holds what this lease committed, and no other leader's work since: else LeadLost."""
        if self.done is None:
            return  # nothing stamped yet: nothing in memory depends on it
        stored = get_meta(self.conn, STAMP_KEY) or ""
        if not stored.startswith(f"{self.token}:"):
            raise LeadLost("another ingest led while this one's session was lost")
        if stored not in (f"{self.token}:{self.done}", f"{self.token}:{self.doubt}"):
            count = stored.partition(":")[2]
            log.error("the new primary lacks transactions this leader committed and acknowledged (it holds %s of "
                      "%d): lost in the failover (asynchronous replication?)", count, self.done)  # fmt: skip
            raise LeadLost(f"the database holds {count} of this leader's {self.done} transactions")
