"""The ingest's writer: it owns the connection, its transactions and savepoints, and translates database errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from shared.store import dialect, schema
from shared.store.dialect import Connection, StoreUnavailable
from shared.store.leader import Lease


class Writer:
    """The one writing connection of an ingest; callers pass `conn` to the statements in writes.py."""

    def __init__(self, path: str | Path, conn: Connection | None = None) -> None:
        """`conn`: one holding the leader lock (§10): its lease retakes a lost session, else LeadLost ends the lead."""
        self.path = path
        self.fenced = conn is not None
        self.conn: Connection = conn if conn is not None else dialect.connect(path)
        # A leader's lease (leader.Lease): its session, lost to a failover, is taken again instead of ending the lead.
        self.lease: Lease | None = self.conn.lease  # type: ignore[assignment]
        schema.migrate(self.conn)
        if self.lease is not None:
            with self.transaction():
                pass  # the first stamp: from now on a failover can tell what this leader committed

    def _guard(self) -> AbstractContextManager[None]:
        return dialect.fenced() if self.fenced else dialect.guarded()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One write transaction; a transient database error rolls it back and becomes StoreUnavailable."""
        if self.lease is not None:
            with self._leased(self.lease) as conn:
                yield conn
            return
        with self._guard(), dialect.write(self.conn) as conn:
            yield conn

    @contextmanager
    def _leased(self, lease: Lease) -> Iterator[Connection]:
        """The leader's transaction, stamped last: a COMMIT whose answer a failover lost counts if it landed.

        Otherwise a transient error is StoreUnavailable: the caller reloads and retries, on the session the
        lease holds by then (or LeadLost ends the lead: another leads, or the database lost our commits).
        """
        try:
            with dialect.write(self.conn) as conn:
                yield conn
                lease.stamp(self.conn)  # type: ignore[arg-type]
        except (*dialect.TRANSIENT, StoreUnavailable) as exc:
            if lease.landed():
                return
            raise StoreUnavailable(str(exc)) from exc
        lease.committed()

    @contextmanager
    def isolated(self) -> Iterator[None]:
        """A savepoint inside the transaction: a failure undoes only what ran inside, then propagates.

        A transient database error is not isolated: it becomes StoreUnavailable and the whole
        transaction is retried by the caller.
        """
        self.conn.execute("SAVEPOINT isolated")
        try:
            yield
        except dialect.TRANSIENT as exc:
            raise StoreUnavailable(str(exc)) from exc
        except BaseException:
            self.conn.execute("ROLLBACK TO isolated")
            self.conn.execute("RELEASE isolated")
            raise
        self.conn.execute("RELEASE isolated")

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()
