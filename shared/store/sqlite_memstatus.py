"""SQLite's allocator without its statistics (SQLITE_CONFIG_MEMSTATUS off), set once per process before any
connection: the setting SQLite recommends, which Python's sqlite3 has no call for.

With the statistics on, every allocation SQLite makes takes one process-wide mutex, so connections working on two
threads wait on each other: a report's reads beside each other (beside.py) at 100,000 devices took 2.4x their time
alone, and 1.1x without (docs/benchmarks.md). The call goes through ctypes to the library Python's sqlite3 is linked
to, and only while SQLite holds no memory (no connection is open: sqlite3_shutdown's rule); where it cannot be made
(a library without these symbols, a connection already open), nothing changes.
"""

from __future__ import annotations

import ctypes

CONFIG_MEMSTATUS = 9  # SQLITE_CONFIG_MEMSTATUS
STATUS_MEMORY_USED = 0  # SQLITE_STATUS_MEMORY_USED


def statistics_off() -> bool:
    """Turn SQLite's allocation statistics off; True if done (here or before: then nothing is allocated counted)."""
    try:
        import _sqlite3

        library = ctypes.CDLL(_sqlite3.__file__)
        used, peak = ctypes.c_int64(), ctypes.c_int64()
        if library.sqlite3_status64(STATUS_MEMORY_USED, ctypes.byref(used), ctypes.byref(peak), 0) != 0:
            return False
        if used.value != 0:
            return False  # a connection is open (or SQLite holds memory): leave the library as it is
        return (
            library.sqlite3_shutdown() == 0
            and library.sqlite3_config(CONFIG_MEMSTATUS, ctypes.c_int(0)) == 0
            and library.sqlite3_initialize() == 0
        )
    except (ImportError, OSError, AttributeError):
        return False
