"""Tokens limited to sites (§14) through Flask's test client on a real database (both engines): two sites with
devices, alerts, events and silences; a site-limited viewer sees only its own, a site-limited operator acts only
on its own, and another site's device answers 404 exactly as one that does not exist.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from shared import config as config_mod
from shared import store
from shared.silences import Silence
from tests.conftest import database
from vesper_web import create_app, stream
from vesper_web.passwd import token_hash

NOW = time.time()
NORTH = {"bell-n1", "bell-n2"}
SOUTH = {"bell-s1", "bell-s2"}
MONITOR = "vesper-ingest-test"
TOKENS = {"viewer": ("viewer", ["north"]), "operator": ("operator", ["north"]), "admin": ("admin", None)}


def bearer(name: str) -> dict[str, str]:
    """The Authorization header of a configured token (its name is secret enough for a test)."""
    return {"Authorization": f"Bearer vsp_{name}_secret"}


def _seed(conn: store.Connection) -> None:
    rows = [(d, "north", ["roof"]) for d in sorted(NORTH)] + [(d, "south", ["roof"]) for d in sorted(SOUTH)]
    store.put_entries(conn, ["site", "tags"], [*rows, ("loose-1", None, ["roof"])], NOW)
    for device_id in [*sorted(NORTH | SOUTH), "loose-1", "seen-1"]:
        store.mark_alive(conn, device_id, NOW)
    for device_id in ("bell-n1", "bell-s1"):
        store.upsert_alert(conn, device_id, "Audio", "CRITICAL", "amp", NOW)
    for device_id in [*sorted(NORTH | SOUTH), "loose-1", "seen-1"]:
        payload = json.dumps({"subsystem": "Audio", "state": "WARNING", "message": "x", "previous_state": None})
        store.insert_event(conn, NOW, "alert", "warning", device_id, payload)
    store.insert_event(conn, NOW, "monitoring_interrupted", "warning", MONITOR, json.dumps({"since": "x"}))
    store.insert_event(conn, NOW, "silence_created", "info", "silence:1", json.dumps({"scope": "tag roof"}))
    store.insert_event(conn, NOW, "device_online", "info", "bell-n2", "{}")  # the last: the catch-up's end


SILENCES = {  # comment -> the silence; those a north token sees start with "mine"
    "mine: device": {"device_id": "bell-n1"},
    "mine: site": {"site": "north"},
    "mine: list": {"device_ids": frozenset({"bell-n1", "bell-n2"})},
    "theirs: device": {"device_id": "bell-s1"},
    "theirs: site": {"site": "south"},
    "theirs: mixed list": {"device_ids": frozenset({"bell-n1", "bell-s1"})},
    "theirs: tag": {"tag": "roof"},
    "theirs: fleet": {},
}


@pytest.fixture
def app(db_path: Path, tmp_path: Path) -> Flask:
    """The app with the three tokens, over two sites' devices, alerts, events and silences."""
    tokens = [{"name": name, "role": role, "hash": token_hash(f"vsp_{name}_secret"), **({"sites": s} if s else {})}
              for name, (role, s) in TOKENS.items()]  # fmt: skip
    cfg = config_mod.from_dict({"auth": {"tokens": tokens}})
    web = config_mod.WebConfig(command_wait_s=0.05)
    made = create_app(config_mod.Config(database=database(db_path, tmp_path), auth=cfg.auth, web=web))
    conn = store.connect(db_path)
    try:
        with store.write(conn):
            _seed(conn)
            for comment, fields in SILENCES.items():
                silence = Silence(0, fields.get("device_id"), fields.get("tag"), None, NOW - 60, NOW + 3600,
                                  comment, "admin", NOW, fields.get("site"), fields.get("device_ids"))  # fmt: skip
                store.add_silence(conn, silence)
    finally:
        conn.close()
    return made


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the app."""
    return app.test_client()


def get(client: FlaskClient, url: str, token: str = "viewer", status: int = 200) -> Any:
    """GET as a token; the JSON answer (or the response for another type), its status checked."""
    response = client.get(url, headers=bearer(token))
    assert response.status_code == status, (url, response.get_data(as_text=True))
    return response.get_json() if response.is_json else response


def listed(client: FlaskClient, query: str = "", token: str = "viewer") -> set[str]:
    """The ids GET /api/devices lists, following its Link header through every page."""
    url, found = f"/api/devices?{query}", set()
    while url:
        response = client.get(url, headers=bearer(token))
        assert response.status_code == 200, response.get_data(as_text=True)
        found |= {d["id"] for d in response.get_json()}
        link = response.headers.get("Link")
        url = link[1 : link.index(">")] if link else ""
    return found


@pytest.mark.parametrize("query", ["", "sort=severity", "sort=name", "sort=-last_seen", "q=bell", "q=be",
                                   "tag=roof", "health=critical", "limit=1", "limit=1&sort=name", "q=bell&limit=1"])
def test_the_list_holds_only_its_sites_devices(client: FlaskClient, query: str) -> None:
    health = {"bell-n1"} if "health" in query else NORTH
    assert listed(client, query) == health
    assert listed(client, query, "admin") >= health | ({"bell-s1"} if "health" in query else SOUTH)


def test_counts_search_other_sites_and_the_csv(client: FlaskClient) -> None:
    response = client.get("/api/devices?limit=1", headers=bearer("viewer"))
    assert response.headers["X-Total-Count"] == "2"
    assert client.get("/api/devices?q=bell-s", headers=bearer("viewer")).headers["X-Total-Count"] == "0"
    assert listed(client, "site=south") == set() and listed(client, "q=loose") == set()
    assert listed(client, "site=south", "admin") == SOUTH
    csv = get(client, "/api/devices?format=csv").get_data(as_text=True)
    assert "bell-n1" in csv and "bell-n2" in csv and "bell-s" not in csv and "loose" not in csv


def test_the_summary_counts_its_devices_only(client: FlaskClient) -> None:
    summary = get(client, "/api/summary")
    assert summary["devices"] == 2 and summary["sites"] == {"north": 2} and summary["sites_total"] == 1
    assert summary["tags"] == {"roof": 2} and summary["health"]["critical"] == 1 and summary["health"]["ok"] == 1
    assert sum(v for k, v in summary["health"].items() if k != "offline") == 2
    assert get(client, "/api/summary", "admin")["devices"] == 6


@pytest.mark.parametrize("url", ["/api/devices/{}", "/api/devices/{}/alerts"])
def test_another_sites_device_is_404_as_an_unknown_one(client: FlaskClient, url: str) -> None:
    unknown = get(client, url.format("bell-zz"), status=404)
    for foreign in ("bell-s1", "loose-1", "seen-1"):  # another site's, one without a site, one without a row
        assert get(client, url.format(foreign), status=404)["error"] == unknown["error"].replace("bell-zz", foreign)
    assert get(client, url.format("bell-n1"))
    assert get(client, url.format("bell-s1"), "admin")


@pytest.mark.parametrize("url", ["/devices/{}", "/devices/{}/history", "/events/stream?device={}"])
def test_another_sites_device_page_is_404(client: FlaskClient, url: str) -> None:
    get(client, url.format("bell-s1"), status=404)
    if "stream" not in url:
        get(client, url.format("bell-n1"))
        get(client, url.format("bell-s1"), "admin")


def test_events_are_its_devices_and_the_monitors_own(client: FlaskClient) -> None:
    events = get(client, "/api/events?limit=100")["events"]
    assert {e["source_id"] for e in events} == NORTH | {MONITOR}
    assert {e["source_id"] for e in get(client, "/api/events?type=alert")["events"]} == NORTH
    assert get(client, "/api/events?device=bell-s1")["events"] == []
    assert get(client, "/api/events?site=south")["events"] == []
    assert {e["source_id"] for e in get(client, "/api/events?site=north")["events"]} == NORTH
    assert {e["source_id"] for e in get(client, "/api/events?tag=roof")["events"]} == NORTH
    older = get(client, f"/api/events?limit=2&before={events[-1]['id']}")["events"]
    assert [e["id"] for e in older] == [e["id"] for e in events[-3:-1]]  # paging back skips the others' events
    everyone = {e["source_id"] for e in get(client, "/api/events?limit=100", "admin")["events"]}
    assert everyone == NORTH | SOUTH | {"loose-1", "seen-1", MONITOR, "silence:1"}


def test_the_stream_resumes_with_its_own_events_only(client: FlaskClient) -> None:
    mine = [e["id"] for e in get(client, "/api/events?limit=100")["events"]]
    response = client.get("/events/stream", headers={**bearer("viewer"), "Last-Event-ID": "0"}, buffered=False)
    assert response.status_code == 200
    body = b""
    try:
        for chunk in response.response:
            body += chunk
            if f"id: {mine[-1]}\n".encode() in body:
                break
    finally:
        response.close()
    sent = [int(line[4:]) for line in body.decode().splitlines() if line.startswith("id: ")]
    assert sent == mine


def test_the_live_filter_sends_its_devices_and_those_of_no_device() -> None:
    items = [(1, "bell-n1", b"a"), (2, "bell-s1", b"b"), (3, "", b"c"), (4, "bell-n2", b"d")]
    assert stream._unsent(items, 0, frozenset(NORTH)) == ([b"a", b"c", b"d"], 4)
    assert stream._unsent(items, 0) == ([b"a", b"b", b"c", b"d"], 4)


def test_silences_are_those_of_its_devices_and_site(client: FlaskClient) -> None:
    shown = {s["comment"] for s in get(client, "/api/silences")["silences"]}
    assert shown == {c for c in SILENCES if c.startswith("mine")}
    assert len(get(client, "/api/silences", "admin")["silences"]) == len(SILENCES)


def test_me_says_the_role_and_sites(client: FlaskClient) -> None:
    assert get(client, "/api/me") | {"auth": True} == {"kind": "token", "name": "viewer", "auth": True,
                                                        "role": "viewer", "sites": ["north"]}  # fmt: skip
    assert get(client, "/api/me", "admin")["sites"] is None


def send(client: FlaskClient, method: str, url: str, body: Any = None, token: str = "operator") -> Any:
    """A write as a token: (status, JSON answer or None)."""
    response = client.open(url, method=method, headers=bearer(token), json=body)
    return response.status_code, response.get_json(silent=True)


def test_an_operator_acts_on_its_devices_only(client: FlaskClient) -> None:
    assert send(client, "POST", "/api/devices/bell-s1/alerts/Audio/ack")[0] == 404
    assert send(client, "POST", "/api/devices/bell-n1/alerts/Audio/ack")[0] == 202  # queued: no ingest here
    assert send(client, "POST", "/api/devices/bell-s1/health-check")[0] == 404
    assert send(client, "POST", "/api/devices/bell-n1/health-check")[0] == 503  # past the scope: no broker here
    assert send(client, "PATCH", "/api/devices/bell-s1", {"notes": "x"})[0] == 404
    assert send(client, "PATCH", "/api/devices/new-1", {"site": "north"})[0] == 404  # not its until it is in a site
    status, device = send(client, "PATCH", "/api/devices/bell-n1", {"notes": "rung"})
    assert status == 200 and device["notes"] == "rung"
    status, answer = send(client, "PATCH", "/api/devices/bell-n1", {"site": "south"})
    assert status == 403 and "cannot move a device to another site" in answer["error"]
    assert send(client, "PATCH", "/api/devices/bell-n1", {"site": None})[0] == 403
    assert send(client, "DELETE", "/api/devices/bell-s1")[0] == 404
    assert send(client, "DELETE", "/api/devices/loose-1")[0] == 404
    assert send(client, "DELETE", "/api/devices/bell-n2")[0] in (202, 204)
    assert get(client, "/api/devices/bell-s1", "admin")["notes"] is None and listed(client, "", "admin") >= SOUTH


def test_an_operator_silences_its_devices_only(client: FlaskClient) -> None:
    status, answer = send(client, "POST", "/api/silences", {"tag": "roof", "duration_s": 60})
    assert status == 403 and "only its own devices" in answer["error"]
    assert send(client, "POST", "/api/silences", {"duration_s": 60})[0] == 403
    assert send(client, "POST", "/api/silences", {"device": "bell-s1", "duration_s": 60})[0] == 404
    status, made = send(client, "POST", "/api/silences", {"device": "bell-n2", "duration_s": 60})
    assert status == 201 and made["device"] == "bell-n2"
    theirs = {s["comment"]: s["id"] for s in get(client, "/api/silences", "admin")["silences"]}
    for comment in ("theirs: device", "theirs: site", "theirs: tag", "theirs: fleet", "theirs: mixed list"):
        assert send(client, "DELETE", f"/api/silences/{theirs[comment]}")[0] == 404, comment
    assert send(client, "DELETE", f"/api/silences/{theirs['mine: site']}")[0] == 204
    assert send(client, "DELETE", f"/api/silences/{made['id']}")[0] == 204


def test_bulk_resolves_within_its_sites(client: FlaskClient) -> None:
    status, answer = send(client, "POST", "/api/bulk", {"filter": {}, "action": "add_tag", "tag": "done"})
    assert status == 200 and answer["matched"] == 2 and answer["count"] == 2
    assert listed(client, "tag=done", "admin") == NORTH
    status, answer = send(client, "POST", "/api/bulk", {"filter": {"site": "south"}, "action": "remove_tag",
                                                        "tag": "roof"})  # fmt: skip
    assert status == 200 and answer["matched"] == 0 and listed(client, "tag=roof", "admin") >= SOUTH
    status, answer = send(client, "POST", "/api/bulk", {"filter": {"tag": "roof"}, "action": "silence",
                                                        "duration_s": 60})  # fmt: skip
    assert status == 201 and answer["count"] == 2
    assert answer["silence"]["tag"] is None and answer["silence"]["device_count"] == 2  # the list, not the tag
    status, answer = send(client, "POST", "/api/bulk", {"filter": {"site": "north"}, "action": "silence",
                                                        "duration_s": 60})  # fmt: skip
    assert status == 201 and answer["silence"]["site"] == "north"
    dry = send(client, "POST", "/api/bulk", {"filter": {"q": "bell"}, "action": "health_check", "dry_run": True})
    assert dry[1]["matched"] == 2
