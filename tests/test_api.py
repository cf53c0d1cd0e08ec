"""The JSON API through Flask's test client, on a real SQLite store seeded by the store itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from shared import store
from shared.events import dumps
from tests import seed
from vesper_web.headers import CONTENT_SECURITY_POLICY

T0 = 1_700_000_000.0


def _seed(path: Path) -> None:
    """Three devices: bell-1 with three alerts, bell-2 healthy and playing, bell-3 offline."""
    conn = store.open_store(path)
    with store.write(conn):
        store.mark_alive(conn, "bell-1", T0)
        store.upsert_alert(conn, "bell-1", "Network", "WARNING", "Wi-Fi RSSI low", T0 + 1)
        store.upsert_alert(conn, "bell-1", "Audio", "WARNING", None, T0 + 2)
        store.upsert_alert(conn, "bell-1", "Motor", "CRITICAL", "Clapper stalled", T0 + 3)
        store.upsert_alert(conn, "bell-1", "FileManager", "FAILED", "SD mount failed", T0 + 4)
        store.mark_alive(conn, "bell-2", T0)
        store.set_playback(conn, "bell-2", True, "ABC123")
        store.set_heartbeat(conn, "bell-2", json.dumps({"uptime": 5}))
        store.mark_alive(conn, "bell-3", T0)
        seed.mark_offline(conn, "bell-3", T0 + 100)
        for i in range(5):
            device = "bell-1" if i % 2 == 0 else "bell-2"
            payload = {"subsystem": "Audio", "state": "WARNING", "message": f"n{i}", "previous_state": None}
            store.insert_event(conn, T0 + i, "alert", "warning", device, dumps(payload))
    conn.close()


@pytest.fixture
def seeded(db_path: Path) -> Path:
    """The app's database (conftest's db_path) holding _seed's three devices."""
    _seed(db_path)
    return db_path


@pytest.fixture
def client(app: Flask, seeded: Path) -> FlaskClient:
    """A test client of conftest's app over the seeded database."""
    return app.test_client()


def _json(client: FlaskClient, url: str, status: int = 200) -> Any:
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    return response.get_json()


@pytest.mark.sqlite_only("the app creates the SQLite file")
def test_create_app_migrates_an_empty_database(app: Flask, db_path: Path) -> None:
    assert db_path.exists()  # the fixture gave create_app a path with no file: it created the schema
    client = app.test_client()
    assert _json(client, "/api/devices") == []
    assert _json(client, "/api/events") == {"events": []}


def test_devices_list(client: FlaskClient) -> None:
    devices = {d["id"]: d for d in _json(client, "/api/devices")}
    assert list(devices) == ["bell-1", "bell-2", "bell-3"]
    assert devices["bell-1"]["health"] == "critical" and devices["bell-1"]["active_alerts"] == 4
    assert devices["bell-2"] == {
        "id": "bell-2",
        "health": "ok",
        "liveness": "online",
        "liveness_as_of": None,  # the ingest sees (or never reported): liveness is current (§11)
        "first_seen": "2023-11-14T22:13:20.000Z",
        "last_seen": "2023-11-14T22:13:20.000Z",
        "playback": {"active": True, "melody_uid": "ABC123"},
        "active_alerts": 0,
        "last_heartbeat": {"uptime": 5},
        "name": None,  # the registry's fields (§7): null and [] for a device no operator described
        "site": None,
        "tags": [],
        "notes": None,
        "heartbeat_timeout_s": None,
        "firmware": None,  # devices.firmware_key of its heartbeats (§12)
        "markers": {"acknowledged": 0, "silenced": 0, "flapping": 0, "unconfirmed": 0, "silenced_until": None},
    }
    assert devices["bell-3"]["health"] == "offline" and devices["bell-3"]["liveness"] == "offline"


def test_one_device_with_its_alerts(client: FlaskClient) -> None:
    device = _json(client, "/api/devices/bell-1")
    assert device["id"] == "bell-1" and device["health"] == "critical"
    assert [a["subsystem"] for a in device["alerts"]] == ["FileManager", "Motor", "Audio", "Network"]
    assert _json(client, "/api/devices/bell-2")["alerts"] == []


def test_alerts_exact_shape_most_severe_first(client: FlaskClient) -> None:
    assert _json(client, "/api/devices/bell-1/alerts") == [
        {"subsystem": "FileManager", "state": "FAILED", "message": "SD mount failed",
         "updated_at": "2023-11-14T22:13:24.000Z"},
        {"subsystem": "Motor", "state": "CRITICAL", "message": "Clapper stalled",
         "updated_at": "2023-11-14T22:13:23.000Z"},
        {"subsystem": "Audio", "state": "WARNING", "message": None, "updated_at": "2023-11-14T22:13:22.000Z"},
        {"subsystem": "Network", "state": "WARNING", "message": "Wi-Fi RSSI low",
         "updated_at": "2023-11-14T22:13:21.000Z"},
    ]  # fmt: skip


def test_alerts_empty_for_healthy_device(client: FlaskClient) -> None:
    assert _json(client, "/api/devices/bell-2/alerts") == []


@pytest.mark.parametrize("url", ["/api/devices/ghost", "/api/devices/ghost/alerts"])
def test_never_seen_device_is_404_json(client: FlaskClient, url: str) -> None:
    assert "ghost" in _json(client, url, 404)["error"]


BAD_IDS = ["%2B", "%23", "a%2Bb", "bell%20one", "%00", "caf%C3%A9", "x" * 65, "x" * 70_000]


@pytest.mark.parametrize("bad", BAD_IDS, ids=lambda b: b[:12])
@pytest.mark.parametrize("suffix", ["", "/alerts"])
def test_bad_device_id_is_400(client: FlaskClient, bad: str, suffix: str) -> None:
    assert "invalid device id" in _json(client, f"/api/devices/{bad}{suffix}", 400)["error"]


@pytest.mark.parametrize("bad", BAD_IDS, ids=lambda b: b[:12])
def test_bad_device_id_health_check_is_400(client: FlaskClient, bad: str) -> None:
    response = client.post(f"/api/devices/{bad}/health-check")
    assert response.status_code == 400 and "error" in response.get_json()


def test_events_recent_oldest_first(client: FlaskClient) -> None:
    events = _json(client, "/api/events")["events"]
    assert [e["id"] for e in events] == [1, 2, 3, 4, 5]
    assert set(events[0]) == {"id", "ts", "type", "severity", "source_id", "payload"}
    assert events[0]["payload"] == {"subsystem": "Audio", "state": "WARNING", "message": "n0", "previous_state": None}
    assert [e["id"] for e in _json(client, "/api/events?limit=2")["events"]] == [4, 5]


def test_events_after_device_and_limit(client: FlaskClient) -> None:
    assert [e["id"] for e in _json(client, "/api/events?after=2")["events"]] == [3, 4, 5]
    assert [e["id"] for e in _json(client, "/api/events?after=0&limit=2")["events"]] == [1, 2]
    assert [e["id"] for e in _json(client, "/api/events?device=bell-2")["events"]] == [2, 4]
    assert [e["id"] for e in _json(client, "/api/events?device=bell-1&after=1")["events"]] == [3, 5]
    assert _json(client, "/api/events?device=ghost")["events"] == []
    assert len(_json(client, "/api/events?limit=100000")["events"]) == 5  # clamped, not refused


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=-1", "limit=abc", "after=-1", "after=1.5", "after=" + "9" * 30, "device=%2B"]
)
def test_events_bad_arguments_are_400(client: FlaskClient, query: str) -> None:
    assert "error" in _json(client, f"/api/events?{query}", 400)


def test_events_limit_is_bounded(app: Flask, client: FlaskClient) -> None:
    conn = store.open_store(app.config["VESPER"].database.target)
    with store.write(conn):
        for i in range(1200):
            store.insert_event(conn, T0 + i, "info", "info", "bell-9", dumps({"type": "x", "payload": {}}))
    conn.close()
    events = _json(client, "/api/events?limit=5000")["events"]
    assert len(events) == 1000 and events[-1]["id"] == 1205
    assert len(_json(client, "/api/events")["events"]) == 100


def test_health_check_without_bridge_is_503(client: FlaskClient) -> None:
    response = client.post("/api/devices/bell-1/health-check")
    assert response.status_code == 503 and "broker" in response.get_json()["error"]


def test_health_check_unknown_device_is_404(client: FlaskClient) -> None:
    response = client.post("/api/devices/ghost/health-check")
    assert response.status_code == 404 and "error" in response.get_json()


@pytest.mark.parametrize("url", ["/api/nope", "/api/devices/bell-1/nope", "/api/", "/api"])
def test_unknown_api_path_is_404_json(client: FlaskClient, url: str) -> None:
    assert "error" in _json(client, url, 404)


def test_wrong_method_is_405_json(client: FlaskClient) -> None:
    response = client.put("/api/devices/bell-1")
    assert response.status_code == 405 and "error" in response.get_json()
    assert "GET" in response.headers["Allow"]
    response = client.get("/api/devices/bell-1/health-check")
    assert response.status_code == 405 and response.mimetype == "application/json"


@pytest.mark.sqlite_only("a database file that cannot be opened")
def test_internal_error_is_500_json(app: Flask, client: FlaskClient, db_path: Path) -> None:
    Path(app.config["VESPER"].database.path).unlink()
    db_path.mkdir()  # the database cannot be opened: a real failure, not a mock
    app.testing = False
    response = client.get("/api/devices")
    assert response.status_code == 500 and "error" in response.get_json()


def test_healthz_without_bridge(client: FlaskClient) -> None:
    body = _json(client, "/healthz")
    assert body["status"] == "ok" and body["bridge"] == {"connected": False, "last_event_id": 0}


@pytest.mark.parametrize("url", ["/api/devices", "/api/devices/ghost", "/api/nope", "/healthz"])
def test_security_headers_on_every_response(client: FlaskClient, url: str) -> None:
    headers = client.get(url).headers
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"


def test_app_opens_no_broker_connection(app: Flask) -> None:
    assert "vesper_bridge" not in app.extensions
