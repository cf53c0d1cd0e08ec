"""The store on a real SQLite file: schema version, WAL, compare-and-set transitions."""

from __future__ import annotations

import sqlite3

from shared import store


def test_schema_is_created_and_versioned(tmp_path):
    conn = store.open_store(tmp_path / "v.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(store.MIGRATIONS)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.migrate(conn) == len(store.MIGRATIONS)  # idempotent
    assert store.integrity_ok(conn)


def test_mark_offline_is_compare_and_set(tmp_path):
    conn = store.open_store(tmp_path / "v.db")
    with store.write(conn):
        store.mark_alive(conn, "d", 100.0)
    with store.write(conn):
        assert store.mark_offline(conn, "d", 200.0) is True
        assert store.mark_offline(conn, "d", 200.0) is False
    with store.write(conn):
        store.mark_alive(conn, "d", 300.0)
        assert store.mark_offline(conn, "d", 200.0) is False  # spoke after the cutoff


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
