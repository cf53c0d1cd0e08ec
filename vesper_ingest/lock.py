"""One ingest per database: an exclusive lock file next to it."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO


class AlreadyRunning(RuntimeError):
    """Another ingest holds the database."""


def acquire(db_path: str) -> IO[str]:
    """Lock `<db>.ingest.lock` for this process's lifetime; the kernel frees it on any exit."""
    path = Path(f"{db_path}.ingest.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        other = handle.read().strip() or "?"
        handle.close()
        raise AlreadyRunning(
            f"another vesper_ingest (pid {other}) is already running against {db_path}; "
            "two would share one MQTT session and kick each other off the broker"
        ) from None
    handle.truncate(0)
    handle.write(str(os.getpid()))
    handle.flush()
    return handle
