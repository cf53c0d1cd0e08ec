"""A read run beside this thread's, on a second connection in a native thread (a report's two halves at once).

The database does most of such a read's work without holding Python's lock (SQLite's steps, PostgreSQL's own
process), so on two cores the halves take the longer one's time, not their sum. The second connection reads the
same snapshot on PostgreSQL (the first's, exported); on SQLite it begins its own read as it opens, a moment after
the first's (a row a write commits between the two may be in one half only). Where no second connection can be
had (SQLite in memory, a connection refused), the work runs here, when its result is asked for.
"""

from __future__ import annotations

import _thread
import sys
from collections.abc import Callable
from types import TracebackType
from typing import Any, Generic, TypeVar

from shared.store.dialect import Connection

T = TypeVar("T")


def _native() -> tuple[Callable[..., Any], Callable[[], Any]]:
    """The interpreter's own thread start and lock: gevent's originals where it patched them (a greenlet would
    run the work only while this thread waits, not beside it)."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("threading"):
        found = monkey.get_original("_thread", ["start_new_thread", "allocate_lock"])
        return found[0], found[1]
    return _thread.start_new_thread, _thread.allocate_lock


class Beside(Generic[T]):
    """`work` started on a second connection to `conn`'s database (inside a read of `conn`'s).

    A context manager: leaving the block waits for the work and closes its connection, whether or not result()
    was asked for (a read left open would hold SQLite's log from being checkpointed).
    """

    def __init__(self, conn: Connection, work: Callable[[Connection], T]) -> None:
        self._work, self._conn, self._out = work, conn, (False, None)
        start, lock = _native()
        self._done, self.started = lock(), False
        try:
            self._other = conn.dialect.reader_beside(conn)
        except conn.dialect.transient:
            self._other = None
        if self._other is not None:
            self._done.acquire()
            try:
                start(self._run, ())
                self.started = True
            except RuntimeError:  # no thread to be had: run here after all
                self._done.release()
                self._close()

    def _run(self) -> None:
        try:
            self._out = (True, self._work(self._other))  # type: ignore[arg-type]
        except BaseException as exc:  # noqa: BLE001 - handed to result(), raised there
            self._out = (False, exc)
        finally:
            self._done.release()

    def _close(self) -> None:
        other, self._other = self._other, None
        if other is not None:
            other.close()  # ends its read (no COMMIT: after a failed statement there may be nothing to commit)

    def result(self) -> T:
        """What the work returned (its error raised here)."""
        if not self.started:
            return self._work(self._conn)
        self.__exit__(None, None, None)
        ok, value = self._out
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    def __enter__(self) -> Beside[T]:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        with self._done:
            pass
        self._close()
