"""The ingest's writer: it owns the connection, its transactions and savepoints, and translates database errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from shared.store import dialect, schema
from shared.store.dialect import Connection, StoreUnavailable


class Writer:
    """The one writing connection of an ingest; callers pass `conn` to the statements in writes.py."""

    def __init__(self, path: str | Path, conn: Connection | None = None) -> None:
        """`conn`: a connection that holds the leader lock (§10); then any failure of it raises LeadLost."""
        self.path = path
        self.fenced = conn is not None
        self.conn: Connection = conn if conn is not None else dialect.connect(path)
        schema.migrate(self.conn)

    def _guard(self) -> AbstractContextManager[None]:
        return dialect.fenced() if self.fenced else dialect.guarded()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One write transaction; a transient database error rolls it back and becomes StoreUnavailable."""
        with self._guard(), dialect.write(self.conn) as conn:
            yield conn

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
