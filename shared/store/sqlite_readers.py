"""SQLite's pool of read-only connections, one per process: a new connection costs ~0.5 ms (open, schema parse).

The web borrows one per request and close() gives it back. A reader is kept only while its file is the
one at the path (a replaced or deleted file gets a fresh connection) and never with a transaction open,
so an idle reader pins no WAL snapshot.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

POOL_MAX = 10  # idle readers kept per file: a worker's requests are short
_idle: dict[tuple[int, str], list[PooledReader]] = {}


class PooledReader(sqlite3.Connection):
    """A read-only connection that close() returns to its process's pool."""

    key: tuple[int, str]
    inode: int

    def close(self) -> None:
        """Back to the pool (a transaction left open is rolled back), or closed when the pool is full."""
        if self.in_transaction:
            self.rollback()
        idle = _idle.setdefault(self.key, [])
        if len(idle) < POOL_MAX:
            idle.append(self)
        else:
            super().close()


def _inode(path: str) -> int:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return -1


def borrow(path: str | Path, open_reader: Callable[[], PooledReader]) -> PooledReader:
    """An idle reader of `path` from this process's pool (its pid: never one from before a fork), or `open_reader()`."""
    key, inode = (os.getpid(), str(path)), _inode(str(path))
    idle = _idle.get(key, [])
    while idle:
        conn = idle.pop()
        if conn.inode == inode:
            return conn
        sqlite3.Connection.close(conn)
    conn = open_reader()
    conn.key, conn.inode = key, inode
    return conn


def close_all() -> None:
    """Close every idle reader of this process (a test's files are about to go)."""
    for idle in _idle.values():
        while idle:
            sqlite3.Connection.close(idle.pop())
