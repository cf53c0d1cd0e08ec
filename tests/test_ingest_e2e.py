"""The real ingest process against a real Mosquitto: rows in SQLite, events on the published topic."""

from __future__ import annotations

import time

from shared import store
from tests.support import wait_for

WARNING = {"subsystem": "FileManager", "state": "WARNING", "msg": "ConfigManager health check failed"}
CLEARED = {"subsystem": "FileManager", "state": "CLEARED"}
PLAYBACK = {"type": "playback_started", "payload": {"melody_uid": "ABC123"}}


def test_brief_examples_give_rows_and_events(make_config, start_ingest, peer, read_db):
    start_ingest(make_config())
    peer.publish("vesper/bell-1/status/heartbeat", {"uptime": 5})
    peer.publish("vesper/bell-1/status/alerts", WARNING)
    peer.publish("vesper/bell-1/status/info", PLAYBACK, qos=0)

    alert, playback = peer.wait_events(2)
    assert alert["type"] == "alert" and alert["severity"] == "warning" and alert["source_id"] == "bell-1"
    assert alert["payload"] == {
        "subsystem": "FileManager",
        "state": "WARNING",
        "message": "ConfigManager health check failed",
        "previous_state": None,
    }
    assert playback["type"] == "playback_started" and playback["payload"] == {"melody_uid": "ABC123"}
    assert alert["id"] < playback["id"] and alert["ts"].endswith("Z")

    conn = read_db()
    rows = store.alerts(conn, "bell-1")
    assert [(r["subsystem"], r["state"], r["message"]) for r in rows] == [
        ("FileManager", "WARNING", "ConfigManager health check failed")
    ]
    dev = store.device(conn, "bell-1")
    assert dev["liveness"] == "online" and dev["playback"] == {"active": True, "melody_uid": "ABC123"}
    assert dev["last_heartbeat"] == {"uptime": 5}

    peer.publish("vesper/bell-1/status/alerts", CLEARED)
    cleared = peer.wait_events(1, type="alert_cleared")[0]
    assert cleared["payload"] == {"subsystem": "FileManager", "previous_state": "WARNING"}
    assert cleared["severity"] == "info"
    assert store.alerts(read_db(), "bell-1") == []


def test_heartbeats_and_repeats_give_no_event(make_config, start_ingest, peer, read_db):
    start_ingest(make_config())
    for i in range(5):
        peer.publish("vesper/bell-2/status/heartbeat", {"n": i})
    peer.publish("vesper/bell-2/status/alerts", {"subsystem": "Audio", "state": "CRITICAL", "msg": "amp hot"})
    peer.publish("vesper/bell-2/status/alerts", {"subsystem": "Audio", "state": "CRITICAL", "msg": "amp hot"})
    # A marker event after the repeat: once it is here, the repeat has been processed too.
    peer.publish("vesper/bell-2/status/alerts", {"subsystem": "Net", "state": "WARNING"})
    peer.wait_events(1, payload={"subsystem": "Net", "state": "WARNING", "message": None, "previous_state": None})
    events = peer.unique_events()
    assert [(e["type"], e["payload"].get("subsystem")) for e in events] == [("alert", "Audio"), ("alert", "Net")]
    assert events[0]["severity"] == "critical"
    assert store.device(read_db(), "bell-2")["last_heartbeat"] == {"n": 4}


def test_stale_retained_heartbeat_makes_device_known_not_online(make_config, start_ingest, peer, read_db):
    peer.publish("vesper/old-bell/status/heartbeat", {"uptime": 1}, retain=True)
    start_ingest(make_config())
    dev = wait_for(lambda: store.device(read_db(), "old-bell"), what="retained heartbeat to make the device known")
    assert dev["liveness"] == "unknown" and dev["health"] == "unknown" and dev["last_seen"] is None
    assert dev["last_heartbeat"] == {"uptime": 1}


def test_silent_device_goes_offline_once_and_comes_back(make_config, start_ingest, peer, read_db):
    start_ingest(make_config(liveness={"heartbeat_timeout_s": 1.5}))
    peer.publish("vesper/quiet/status/heartbeat", {})
    peer.publish("vesper/chatty/status/heartbeat", {})
    # Keep one device alive while the other is silent for well over two timeouts.
    deadline = time.monotonic() + 4.0
    while time.monotonic() < deadline:
        peer.publish("vesper/chatty/status/heartbeat", {})
        time.sleep(0.3)
    offline = [e for e in peer.unique_events() if e["type"] == "device_offline"]
    assert [e["source_id"] for e in offline] == ["quiet"], offline
    assert offline[0]["severity"] == "warning" and offline[0]["payload"]["last_seen"]
    assert store.device(read_db(), "quiet")["health"] == "offline"

    peer.publish("vesper/quiet/status/heartbeat", {})
    online = peer.wait_events(1, type="device_online")
    assert online[0]["source_id"] == "quiet" and online[0]["severity"] == "info"
    assert store.device(read_db(), "quiet")["liveness"] == "online"


def test_no_offline_during_grace_after_restart(make_config, start_ingest, peer, read_db):
    cfg = make_config(liveness={"heartbeat_timeout_s": 2.0})
    first = start_ingest(cfg)
    for device in ("a", "b"):
        peer.publish(f"vesper/{device}/status/heartbeat", {})
    wait_for(lambda: len(store.devices(read_db())) == 2, what="two devices")
    assert first.stop() == 0
    time.sleep(3.0)  # the ingest is down for longer than the timeout: a real outage, not a wait for an event
    start_ingest(cfg)
    restarted = time.monotonic()
    # `a` is alive on the far side and keeps heartbeating; `b` stays silent: reported only after the grace.
    while not [e for e in peer.unique_events() if e["type"] == "device_offline"]:
        assert time.monotonic() - restarted < 10, "b was never reported offline"
        peer.publish("vesper/a/status/heartbeat", {})
        time.sleep(0.2)
    reported = time.monotonic() - restarted
    offline = [e["source_id"] for e in peer.unique_events() if e["type"] == "device_offline"]
    assert offline == ["b"], offline
    assert reported >= 2.0, f"device_offline {reported:.2f}s after restart, inside the 2 s grace"
