"""A read run beside this thread's, on a second connection in a native thread (a report's two halves at once).

The database does most of such a read's work without holding Python's lock (SQLite's steps, PostgreSQL's own
process), so on two cores the halves take the longer one's time, not their sum. The second connection reads the
same snapshot on PostgreSQL (the first's, exported); on SQLite it begins its own read at once, a moment after the
first's (the rows a write commits between the two may be in one half only). A database that cannot be opened
twice (SQLite in memory) runs the work here, after.
"""

from __future__ import annotations

import _thread
import sys
from collections.abc import Callable
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
    """`work` started on a second connection to `conn`'s database; result() waits for what it returned."""

    def __init__(self, conn: Connection, work: Callable[[Connection], T]) -> None:
        self._work = work
        self._conn = conn
        self._other = conn.dialect.reader_beside(conn)
        self._out: list[Any] = []
        start, lock = _native()
        self._done = lock()
        if self._other is not None:
            self._done.acquire()
            start(self._run, ())

    def _run(self) -> None:
        try:
            self._out.append((True, self._work(self._other)))  # type: ignore[arg-type]
        except BaseException as exc:  # noqa: BLE001 - handed to result(), raised there
            self._out.append((False, exc))
        finally:
            self._done.release()

    def result(self) -> T:
        """What the work returned (its error raised here); the second connection closed."""
        if self._other is None:
            return self._work(self._conn)
        with self._done:
            pass
        try:
            self._other.execute("COMMIT")
        finally:
            self._other.close()
        ok, value = self._out[0]
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]
