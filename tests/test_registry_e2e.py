"""The registry with the real processes: Mosquitto, the ingest, gunicorn; a forgotten device never goes offline."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from shared import config as config_mod
from tests.support import Peer, wait_for

TIMEOUT_S = 3.0
WAIT_S = 30.0


def call(bind: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One request as the console's scripts send it; (status, JSON body or None)."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"X-Requested-With": "vesper-console", "Content-Type": "application/json"}
    request = urllib.request.Request(f"http://{bind}{path}", data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=WAIT_S) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.load(error)


def offline_events(bind: str, device_id: str) -> list[dict[str, Any]]:
    """The stored device_offline events of one device."""
    _, body = call(bind, "GET", f"/api/events?device={device_id}&limit=1000")
    return [e for e in body["events"] if e["type"] == "device_offline"]


def test_a_deleted_online_device_never_goes_offline_and_returns_fresh(
    make_config, start_ingest, start_web, peer: Peer
) -> None:
    cfg = make_config(liveness={"heartbeat_timeout_s": TIMEOUT_S, "sweep_interval_s": 0.2})
    start_ingest(cfg)
    start_web(cfg)
    bind = config_mod.load(cfg).web.bind
    for device_id in ("bell-1", "bell-2"):  # bell-2 stays: its offline event shows the timeout passed
        peer.publish(f"vesper/{device_id}/status/heartbeat", {"uptime": 1})
    wait_for(lambda: call(bind, "GET", "/api/devices/bell-1")[1].get("liveness") == "online", WAIT_S, "bell-1 online")

    status, device = call(bind, "PATCH", "/api/devices/bell-1", {"name": "St Mary's, north tower", "tags": ["north"]})
    assert status == 200 and device["name"] == "St Mary's, north tower" and device["tags"] == ["north"]
    assert device["liveness"] == "online"
    status, _ = call(bind, "DELETE", "/api/devices/bell-1")
    assert status == 204  # answered once the ingest forgot it: the GET that follows says 404, as does the list
    assert call(bind, "GET", "/api/devices/bell-1")[0] == 404
    assert [d["id"] for d in call(bind, "GET", "/api/devices")[1]] == ["bell-2"]

    wait_for(lambda: offline_events(bind, "bell-2"), WAIT_S, "bell-2's timeout to pass")
    assert offline_events(bind, "bell-1") == []
    assert [e for e in peer.unique_events() if e["source_id"] == "bell-1"] == []

    _, before = call(bind, "GET", "/api/events?limit=1000")
    peer.publish("vesper/bell-1/status/heartbeat", {"uptime": 2})
    fresh = wait_for(lambda: (d := call(bind, "GET", "/api/devices/bell-1"))[0] == 200 and d[1], WAIT_S, "bell-1 anew")
    assert fresh["liveness"] == "online" and fresh["name"] is None and fresh["tags"] == []
    assert fresh["first_seen"] == fresh["last_seen"] and fresh["active_alerts"] == 0
    _, after = call(bind, "GET", "/api/events?limit=1000")
    assert after == before  # a first appearance: no device_online
    _, listed = call(bind, "GET", "/api/devices")
    assert [d["id"] for d in listed] == ["bell-1", "bell-2"]
