"""A report's incidents on SQLite (medians.py): read device by device (episodes_incidents), the same as grouped.

SQLite reads a window's incidents by walking the devices that have any, each one's incidents started in the window
one index range; PostgreSQL groups them by hash. Both forms run here on one real SQLite file of random incidents
(devices the fleet no longer lists among them, moments at the window's edges, unacknowledged and open ones) and
must find the same times for every device, with a site-limited caller's scope and without.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from shared import store
from shared.store import episodes
from shared.store.episodes import Episode
from shared.store.medians import IncidentTimes, incident_times
from shared.store.sqlite import SQLITE
from shared.store.tables import engine_only

H = 3600.0
START, END = 1_000_000.0, 1_000_000.0 + 30 * 24 * H
SITES = ("north", "south", None)


def _fleet(conn: store.Connection, rng: random.Random) -> None:
    """40 devices (30 listed, 10 forgotten), each with up to 12 incidents around the window, on 3 subsystems."""
    rows = []
    for n in range(40):
        device_id = f"dev-{n:03d}"
        if n < 30:
            conn.execute("INSERT INTO devices (id, first_seen) VALUES (?, ?)", (device_id, START - H))
            site = SITES[n % 3]
            if site is not None:
                conn.execute(
                    "INSERT INTO registry (device_id, site, tags, updated_at) VALUES (?, ?, '[]', 0)", (device_id, site)
                )
        edges = [START, END, START - 1, END - 0.001]
        for k in range(rng.randint(0, 12)):
            started = rng.choice(edges) if k == 0 else rng.uniform(START - 5 * 24 * H, END + 5 * 24 * H)
            ended = None if rng.random() < 0.1 else started + rng.choice((0.0, rng.uniform(1, 3 * 24 * H)))
            ack_at = started + rng.uniform(0, 600) if rng.random() < 0.4 else None
            subsystem = f"s{k % 3}-{k}"
            rows.append(Episode("incident", device_id, subsystem, started, "WARNING", ended=ended, ack_at=ack_at))
    episodes.write(conn, rows)


def _by_device(times: IncidentTimes) -> dict[str, tuple[list[int], list[int]]]:
    """Each device's times to acknowledge and to end, sorted (the forms may list a device's times in any order)."""
    out: dict[str, tuple[list[int], list[int]]] = {}
    for at, joined in enumerate(times):
        for device_id, text, count in zip(*joined, strict=True):
            values = sorted(int(v) for v in text.split(",")) if text else []
            assert len(values) == count
            out.setdefault(device_id, ([], []))[at].extend(values)
    return {d: (sorted(a), sorted(e)) for d, (a, e) in out.items() if a or e}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_walked_incidents_equal_the_grouped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    """Every device's times the same both ways, the forgotten devices' too; a site-limited read only its sites'."""
    conn = store.open_store(tmp_path / "walk.db")
    try:
        with store.write(conn):
            _fleet(conn, random.Random(seed))
        reads = {}
        for walked in (True, False):
            monkeypatch.setattr(SQLITE, "skip_scan", walked)
            reads[walked] = [_by_device(incident_times(conn, (START, END), sites)) for sites in (None, ["north"])]
        assert reads[True] == reads[False]
        every, north = reads[True]
        assert any(device_id >= "dev-030" for device_id in every), "a forgotten device's incidents count"
        assert north and set(north) == {d for d in every if int(d[4:]) < 30 and int(d[4:]) % 3 == 0}
    finally:
        conn.close()


def test_an_empty_window_has_no_times(tmp_path: Path) -> None:
    """No incidents at all, and none in the window: nothing, not an error."""
    conn = store.open_store(tmp_path / "empty.db")
    try:
        assert _by_device(incident_times(conn, (START, END))) == {}
        with store.write(conn):
            episodes.write(conn, [Episode("incident", "dev-1", "Audio", END + H, "WARNING", ended=END + 2 * H)])
        assert _by_device(incident_times(conn, (START, END))) == {}
        assert "episodes_incidents" in engine_only("sqlite")
    finally:
        conn.close()
