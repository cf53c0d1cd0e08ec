"""SQLite's allocation statistics off before a process's first connection (shared/store/sqlite_memstatus.py).

Each case runs in a fresh interpreter, as the ingest and the web start: the setting is the library's, once per
process, and may only be made while no connection is open.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
USED = """
import ctypes, _sqlite3
used, peak = ctypes.c_int64(), ctypes.c_int64()
ctypes.CDLL(_sqlite3.__file__).sqlite3_status64(0, ctypes.byref(used), ctypes.byref(peak), 0)
"""


def _run(code: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_the_store_turns_the_statistics_off_before_its_first_connection(tmp_path: Path) -> None:
    """Importing the store turns them off; its connections then work and SQLite counts no memory in use."""
    out = _run(
        "from shared import store\nfrom shared.store import sqlite\n"
        f"conn = store.open_store({str(tmp_path / 'v.db')!r})\n"
        "with store.write(conn):\n    conn.execute(\"INSERT INTO devices (id) VALUES ('d-1')\")\n"
        f"{USED}print(sqlite.FAST_ALLOCATOR, conn.execute('SELECT id FROM devices').fetchone()[0], used.value)\n"
    )
    assert out == ["True", "d-1", "0"]


def test_an_open_connection_leaves_the_library_as_it_is() -> None:
    """With a connection already open the setting is not made (SQLite's rule), and that connection still works."""
    out = _run(
        "import sqlite3\nconn = sqlite3.connect(':memory:')\nconn.execute('CREATE TABLE t (x)')\n"
        "from shared.store import sqlite_memstatus\nmade = sqlite_memstatus.statistics_off()\n"
        f"{USED}print(made, conn.execute('SELECT count(*) FROM t').fetchone()[0], used.value > 0)\n"
    )
    assert out == ["False", "0", "True"]
