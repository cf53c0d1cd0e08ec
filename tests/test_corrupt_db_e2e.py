"""A corrupt or unreadable database at start (§16): the process stops with one line naming the file and what to do."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from shared import store
from tests.conftest import write_config
from tests.support import ROOT, ingest_args, web_args
from vesper_sim import broker as broker_mod


def random_bytes(db: Path) -> None:
    """Not a database at all."""
    db.write_bytes(os.urandom(64 * 1024))


def truncated(db: Path) -> None:
    """A real Vesper database (with events) cut short, as a full disk or a bad copy leaves it."""
    conn = store.open_store(db)
    with store.write(conn):
        for n in range(500):
            store.insert_event(conn, 1.0, "info", "info", "bell-1", f'{{"n": {n}}}')
    conn.close()  # the last connection checkpoints: the whole database is in the file
    db.write_bytes(db.read_bytes()[: db.stat().st_size // 2])


def directory(db: Path) -> None:
    """Unreadable: a directory where the file should be (chmod 000 would not stop root)."""
    db.mkdir()


BREAKS: dict[str, Callable[[Path], None]] = {"random": random_bytes, "truncated": truncated, "directory": directory}
WHAT_TO_DO = {"random": "move it aside", "truncated": "move it aside", "directory": "this user can read and write"}
PROCESSES = {"ingest": ingest_args, "web": web_args}


@pytest.mark.sqlite_only("SQLite's file")
@pytest.mark.parametrize("process", PROCESSES)
@pytest.mark.parametrize("broken", BREAKS)
def test_broken_database_stops_the_process_with_one_line(tmp_path: Path, process: str, broken: str) -> None:
    db = tmp_path / "var" / "vesper.db"
    db.parent.mkdir()
    BREAKS[broken](db)
    config = write_config(tmp_path / "vesper.toml", broker_mod.free_port(), db)
    env = {**os.environ, "VESPER_CONFIG": str(config), "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(PROCESSES[process](), cwd=ROOT, env=env, capture_output=True, text=True, timeout=45)

    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Traceback" not in done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"vesper_{process}: database {db} ") and WHAT_TO_DO[broken] in lines[0], lines[0]
    assert "Listening at" not in done.stdout + done.stderr  # the web stopped before it listened
