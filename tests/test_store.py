"""The store on a real SQLite file: schema version, WAL, compare-and-set transitions."""

from __future__ import annotations

import sqlite3

import pytest

from shared import store
from tests import seed


def test_schema_is_created_and_versioned(tmp_path):
    conn = store.open_store(tmp_path / "v.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(store.MIGRATIONS)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.migrate(conn) == len(store.MIGRATIONS)  # idempotent
    assert store.integrity_ok(conn)


def test_mark_overdue_offline_is_compare_and_set(tmp_path):
    conn = store.open_store(tmp_path / "v.db")
    with store.write(conn):
        store.mark_alive(conn, "d", 100.0)
    with store.write(conn):
        assert store.mark_overdue_offline(conn, 200.0, 100.0, 0.0, 100.0) == [("d", 100.0)]
        assert store.mark_overdue_offline(conn, 200.0, 100.0, 0.0, 100.0) == []
    with store.write(conn):
        store.mark_alive(conn, "d", 300.0)
        assert store.mark_overdue_offline(conn, 350.0, 100.0, 0.0, 250.0) == []  # spoke within its timeout


def test_event_ids_never_reused_after_pruning(tmp_path):
    conn = store.open_store(tmp_path / "v.db")
    with store.write(conn):
        for ts in (1.0, 2.0, 3.0):
            store.insert_event(conn, ts, "info", "info", "d", "{}")
        assert store.prune_events(conn, 10.0) == 3
        assert store.insert_event(conn, 11.0, "info", "info", "d", "{}") == 4
    assert store.last_event_id(conn) == 4


def test_alerts_ordered_most_severe_first(tmp_path):
    conn = store.open_store(tmp_path / "v.db")
    with store.write(conn):
        store.mark_alive(conn, "d", 1.0)
        for sub, state in [("B", "WARNING"), ("A", "WARNING"), ("Z", "FAILED"), ("C", "CRITICAL")]:
            store.upsert_alert(conn, "d", sub, state, None, 1.0)
    assert [(a["subsystem"], a["state"]) for a in store.alerts(conn, "d")] == [
        ("Z", "FAILED"),
        ("C", "CRITICAL"),
        ("A", "WARNING"),
        ("B", "WARNING"),
    ]
    assert store.device(conn, "d")["health"] == "critical"


def test_write_rolls_back_on_error(tmp_path):
    conn = store.open_store(tmp_path / "v.db")
    try:
        with store.write(conn):
            store.mark_alive(conn, "d", 1.0)
            raise sqlite3.IntegrityError("boom")
    except sqlite3.IntegrityError:
        pass
    assert store.device(conn, "d") is None


def test_wire_json_matches_the_api_form(tmp_path):
    import json

    from shared.events import wire_json

    conn = store.open_store(tmp_path / "v.db")
    with store.write(conn):
        store.insert_event(conn, 1.5, "alert", "warning", "d-1", '{"subsystem":"A","message":"<b>\\"x\\"</b>"}')
    (row,) = store.event_rows_after(conn, 0, 10)
    assert json.loads(wire_json(*row)) == store.events_after(conn)[0]


def test_devices_json_is_devices_as_json(tmp_path):
    import json

    conn = store.open_store(tmp_path / "v.db")
    with store.write(conn):
        store.mark_alive(conn, "b-ok", 1_700_000_000.1234)
        store.set_heartbeat(conn, "b-ok", '{"fw":"v1","note":"<b>\\"x\\"</b> \u2028 é"}')
        store.ensure_device(conn, "a:never.seen_", 1_700_000_001.0)  # unknown, no last_seen, no heartbeat
        store.mark_alive(conn, "c-alerts", 1_700_000_002.9995)
        store.set_playback(conn, "c-alerts", True, 'mel "1" \\ é')
        store.upsert_alert(conn, "c-alerts", "Audio", "WARNING", "m", 5.0)
        store.upsert_alert(conn, "c-alerts", "Disk", "FAILED", None, 5.0)
        store.mark_alive(conn, "d-off", 3.0)
        seed.mark_offline(conn, "d-off", 4.0)
    assert json.loads(store.devices_json(conn)) == store.devices(conn)
    assert [d["health"] for d in store.devices(conn)] == ["unknown", "ok", "critical", "offline"]
    assert json.loads(store.devices_json(store.open_store(tmp_path / "empty.db"))) == []


@pytest.mark.parametrize(
    "ts",
    [0.0, 1e-7, 0.0004999, 0.0005, 0.9995, 0.9999995, 1.0, 1_700_000_000.0, 1_700_000_000.0015,
     1_700_000_000.9999996, 1_700_000_000.12345, 4_102_444_799.9999, -1.5, 253_402_300_799.999],
)  # fmt: skip
def test_iso_is_exactly_datetimes(ts):
    from datetime import UTC, datetime

    from shared.events import iso

    assert iso(ts) == datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
