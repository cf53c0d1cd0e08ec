"""A token limited to a site (§14) against the real processes: Mosquitto, the ingest, gunicorn (gevent), the database.

While devices of two sites raise and clear alerts (paced, a few per second), the north token's device list,
another site's device (API and page: 404), /api/events and /events/stream (live and resumed with
Last-Event-ID) carry the north devices' events and nothing of the south's, whose events are known to have
been stored before the north ones that prove the stream is live.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shared import config as config_mod
from tests.support import Peer, Process, wait_for
from tests.test_web_e2e import TIMEOUT, WEB, Stream, alert
from vesper_web.passwd import token_hash

NORTH = ("north-1", "north-2")
SOUTH = ("south-1", "south-2")
TOKENS = {"north": "vsp_north_secret", "admin": "vsp_admin_secret"}
PACE_S = 0.15  # between two devices' alerts: a few events per second from each site
MONITOR_TYPES = {"monitoring_interrupted", "monitoring_resumed"}


def auth_section() -> str:
    """[auth] with an admin token and a viewer token limited to the north site (TOML written by hand: a table)."""
    north = token_hash(TOKENS["north"])
    return (
        "\n[auth]\ntokens = [\n"
        f'  {{ name = "north", role = "viewer", hash = "{north}", sites = ["north"] }},\n'
        f'  "admin:admin:{token_hash(TOKENS["admin"])}",\n]\n'
    )


class Client:
    """Plain HTTP with one bearer token."""

    def __init__(self, bind: str, token: str) -> None:
        self.bind = bind
        self.headers = {"Authorization": f"Bearer {TOKENS[token]}"}

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Status and body (JSON when it is JSON)."""
        host, _, port = self.bind.rpartition(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
        try:
            headers = {**self.headers, "Content-Type": "application/merge-patch+json"} if body else self.headers
            conn.request(method, path, body=json.dumps(body) if body else None, headers=headers)
            response = conn.getresponse()
            raw = response.read()
            is_json = response.getheader("Content-Type", "").startswith("application/json")
            return response.status, json.loads(raw) if is_json else raw
        finally:
            conn.close()

    def get(self, path: str) -> Any:
        """A GET that must answer 200."""
        status, body = self.call("GET", path)
        assert status == 200, (path, status, body)
        return body


class ScopedStream(Stream):
    """test_web_e2e's stream reader, sending a bearer token."""

    def __init__(self, bind: str, token: str, last_event_id: int | None = None) -> None:
        host, _, port = bind.rpartition(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
        headers = {"Accept": "text/event-stream", "Authorization": f"Bearer {TOKENS[token]}"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.conn.request("GET", "/events/stream", headers=headers)
        self.response = self.conn.getresponse()
        self.comments = 0
        self.raw: list[bytes] = []
        assert self.response.status == 200, self.response.read()
        assert self.message() == ["retry: 3000", 'data: {"type": "connected"}']


@pytest.fixture
def running(make_config: Callable[..., Path], start_ingest: Callable[..., Process],
            start_web: Callable[..., Process]) -> str:  # fmt: skip
    """Ingest and web with the two tokens, the bridge connected; the web's host:port."""
    path = make_config(web=WEB)
    path.write_text(path.read_text() + auth_section())
    start_ingest(path)
    start_web(path)
    bind = config_mod.load(path).web.bind
    wait_for(lambda: Client(bind, "admin").get("/healthz")["bridge"]["connected"], TIMEOUT, "the bridge to connect")
    return bind


@pytest.fixture
def producing(running: str, peer: Peer) -> Iterator[threading.Event]:
    """Both sites' devices registered, then raising and clearing alerts until the test ends (south first)."""
    admin = Client(running, "admin")
    for device_id in (*NORTH, *SOUTH):
        site = "north" if device_id in NORTH else "south"
        assert admin.call("PATCH", f"/api/devices/{device_id}", {"site": site})[0] == 200
    stop = threading.Event()

    def produce() -> None:
        n = 0
        while not stop.is_set():
            state = "WARNING" if n % 2 == 0 else "OK"
            for device_id in (*SOUTH, *NORTH):
                peer.publish(f"vesper/{device_id}/status/alerts", alert("Audio", state, f"round {n}"))
                if stop.wait(PACE_S):
                    return
            n += 1

    thread = threading.Thread(target=produce, name="producer", daemon=True)
    thread.start()
    yield stop
    stop.set()
    thread.join(TIMEOUT)


def own_only(events: list[dict[str, Any]]) -> None:
    """Every event is a north device's or the monitor's own."""
    strangers = [e for e in events if e["source_id"] not in NORTH and e["type"] not in MONITOR_TYPES]
    assert strangers == [], strangers


def test_a_site_limited_token_sees_nothing_of_another_site(running: str, producing: threading.Event) -> None:
    stream = ScopedStream(running, "north")
    try:
        live = stream.events(8)  # its own events arriving: the proof the stream is live
    finally:
        stream.close()
    own_only(live)
    assert {e["source_id"] for e in live} & set(NORTH)
    admin, north = Client(running, "admin"), Client(running, "north")
    everything = admin.get(f"/api/events?limit=1000&before={live[-1]['id'] + 1}")["events"]
    south_before = [e for e in everything if e["source_id"] in SOUTH and e["id"] > live[0]["id"]]
    assert south_before, "the south devices' events were stored among the north's the stream sent"

    resumed = ScopedStream(running, "north", last_event_id=live[0]["id"] - 1)
    try:
        again = resumed.events(len(live) + 4)  # the catch-up from the database, then live again
    finally:
        resumed.close()
    own_only(again)
    assert [e["id"] for e in again[: len(live)]] == [e["id"] for e in live]

    events = north.get("/api/events?limit=1000")["events"]
    own_only(events)
    assert {e["source_id"] for e in events} == set(NORTH)
    assert {d["id"] for d in north.get("/api/devices")} == set(NORTH)
    assert north.get("/api/summary")["devices"] == len(NORTH)
    for path in ("/api/devices/south-1", "/api/devices/south-1/alerts", "/devices/south-1",
                 "/devices/south-1/history", "/events/stream?device=south-1"):  # fmt: skip
        assert north.call("GET", path)[0] == 404, path
    assert north.call("GET", "/devices/north-1")[0] == 200
    assert {d["id"] for d in admin.get("/api/devices")} >= set(NORTH + SOUTH)
