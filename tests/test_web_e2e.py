"""The web process for real: Mosquitto, the ingest, gunicorn with a gevent worker, a plain HTTP client."""

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from shared import config as config_mod
from shared import store
from shared.events import dumps
from tests.support import Peer, wait_for

TIMEOUT = 30.0
WEB = {"keepalive_s": 0.5}


class Stream:
    """A plain HTTP/1.1 client on /events/stream that reads SSE messages line by line."""

    def __init__(self, bind: str, query: str = "", last_event_id: int | None = None) -> None:
        host, _, port = bind.rpartition(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.conn.request("GET", f"/events/stream{query}", headers=headers)
        self.response = self.conn.getresponse()
        self.comments = 0
        self.raw: list[bytes] = []
        assert self.response.status == 200, self.response.read()
        assert self.message() == ["retry: 3000", 'data: {"type": "connected"}']

    def message(self) -> list[str]:
        """The lines of the next message."""
        lines: list[str] = []
        while True:
            line = self.response.readline()
            assert line, "the server closed the stream"
            self.raw.append(line)
            if line == b"\n":
                if lines:
                    return lines
                continue
            lines.append(line.decode("utf-8").rstrip("\n"))

    def events(self, n: int, timeout: float = TIMEOUT) -> list[dict[str, Any]]:
        """The next n events (keepalive comments counted and skipped); id: must match the JSON's id."""
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            assert time.monotonic() < deadline, f"only {len(out)} of {n} events within {timeout}s"
            lines = self.message()
            if all(line.startswith(":") for line in lines):
                self.comments += 1
                continue
            assert len(lines) == 2 and lines[0].startswith("id: ") and lines[1].startswith("data: "), lines
            event = json.loads(lines[1][len("data: ") :])
            assert int(lines[0][len("id: ") :]) == event["id"]
            out.append(event)
        return out

    def close(self) -> None:
        """Hang up."""
        self.conn.close()


def get_json(bind: str, path: str) -> Any:
    """GET a JSON document from the web process."""
    with urllib.request.urlopen(f"http://{bind}{path}", timeout=TIMEOUT) as response:
        return json.load(response)


def refused(bind: str, path: str, method: str = "GET") -> tuple[int, Any]:
    """Status and JSON body of a request the web must refuse."""
    request = urllib.request.Request(f"http://{bind}{path}", method=method)
    with pytest.raises(urllib.error.HTTPError) as caught, urllib.request.urlopen(request, timeout=TIMEOUT):
        pass
    with caught.value as error:
        return error.code, json.load(error)


def alert(subsystem: str, state: str, msg: str | None = None) -> dict[str, Any]:
    """An alert message as a device publishes it."""
    return {"subsystem": subsystem, "state": state, **({"msg": msg} if msg else {})}


@pytest.fixture
def web(make_config, start_ingest, start_web) -> str:
    """Ingest and web running, the web's bridge connected; returns the web's host:port."""
    cfg = make_config(web=WEB)
    start_ingest(cfg)
    start_web(cfg)
    bind = config_mod.load(cfg).web.bind
    wait_for(lambda: get_json(bind, "/healthz")["bridge"]["connected"], TIMEOUT, "the bridge to connect")
    return bind


def test_alert_reaches_the_stream_with_an_id(web: str, peer: Peer) -> None:
    stream = Stream(web)
    peer.publish("vesper/bell-1/status/alerts", alert("FileManager", "WARNING", "ConfigManager health check failed"))
    (event,) = stream.events(1)
    assert event["type"] == "alert" and event["source_id"] == "bell-1" and event["severity"] == "warning"
    assert event["payload"] == {
        "subsystem": "FileManager",
        "state": "WARNING",
        "message": "ConfigManager health check failed",
        "previous_state": None,
    }
    assert isinstance(event["id"], int) and event["ts"].endswith("Z")
    published = peer.wait_events(1)[0]
    assert stream.raw[-2] == f"data: {dumps(published)}\n".encode()  # byte for byte what the ingest sent
    assert get_json(web, "/healthz")["bridge"]["last_event_id"] >= event["id"]
    stream.close()


def test_reconnect_with_last_event_id_gets_exactly_the_missed_events(web: str, peer: Peer) -> None:
    stream = Stream(web)
    peer.publish("vesper/bell-1/status/alerts", alert("Audio", "WARNING", "amp warm"))
    (first,) = stream.events(1)
    stream.close()

    for state in ("CRITICAL", "FAILED", "CLEARED"):
        peer.publish("vesper/bell-1/status/alerts", alert("Audio", state, "amp hot"))
    missed = wait_for(
        lambda: (e := get_json(web, f"/api/events?after={first['id']}")["events"]) and len(e) >= 3 and e,
        TIMEOUT,
        "the 3 missed events to be stored",
    )
    assert [e["type"] for e in missed] == ["alert", "alert", "alert_cleared"]

    again = Stream(web, last_event_id=first["id"])
    assert again.events(3) == missed
    peer.publish("vesper/bell-1/status/alerts", alert("Motor", "WARNING", "motor current high"))
    (live,) = again.events(1)
    assert live["id"] == missed[-1]["id"] + 1 and live["payload"]["subsystem"] == "Motor"
    again.close()


def test_heartbeats_never_appear(web: str, peer: Peer) -> None:
    stream = Stream(web)
    for i in range(5):
        peer.publish("vesper/bell-9/status/heartbeat", {"uptime": i})
    peer.publish("vesper/bell-9/status/alerts", alert("Network", "WARNING", "marker"))
    (event,) = stream.events(1)
    assert event["type"] == "alert" and event["payload"]["message"] == "marker"
    assert not any(b"heartbeat" in line or b"uptime" in line for line in stream.raw)
    stream.close()


def test_keepalive_comments_on_an_idle_stream(web: str) -> None:
    stream = Stream(web)
    assert stream.message() == [": keepalive"]
    assert stream.message() == [": keepalive"]
    stream.close()


def test_device_filter(web: str, peer: Peer) -> None:
    stream = Stream(web, "?device=bell-b")
    peer.publish("vesper/bell-a/status/alerts", alert("Audio", "WARNING", "a"))
    peer.publish("vesper/bell-b/status/alerts", alert("Audio", "WARNING", "b"))
    peer.publish("vesper/bell-a/status/alerts", alert("Audio", "CRITICAL", "a"))
    peer.publish("vesper/bell-b/status/alerts", alert("Audio", "CRITICAL", "b"))
    events = stream.events(2)
    assert [(e["source_id"], e["payload"]["state"]) for e in events] == [("bell-b", "WARNING"), ("bell-b", "CRITICAL")]
    stream.close()
    code, body = refused(web, "/events/stream?device=%2B")
    assert code == 400 and "error" in body


def test_hole_in_mqtt_is_filled_from_sqlite(web: str, peer: Peer, db_path: Path) -> None:
    stream = Stream(web)
    # Events committed without ever being published (an ingest killed after its commit)...
    conn = store.open_store(db_path)
    with store.write(conn):
        ids = [store.insert_event(conn, 1.0, "info", "info", "bell-h", dumps({"n": n})) for n in range(3)]
    latest = store.events_after(conn, ids[-1] - 1)[0]
    conn.close()
    # ...then only the last one comes over MQTT: the bridge sees the jump and reads the rest.
    peer.publish("vesper/console/published", dumps(latest))
    assert [e["id"] for e in stream.events(3)] == ids
    stream.close()


def test_health_check_publishes_the_control_command(web: str, peer: Peer, broker) -> None:
    device = Peer(broker.port, subscribe=["vesper/+/control"])
    try:
        peer.publish("vesper/bell-7/status/heartbeat", {"uptime": 1})
        wait_for(lambda: any(d["id"] == "bell-7" for d in get_json(web, "/api/devices")), TIMEOUT, "bell-7 known")
        request = urllib.request.Request(f"http://{web}/api/devices/bell-7/health-check", method="POST")
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            assert response.status == 202 and json.load(response) == {"status": "sent"}
        msg = wait_for(lambda: device.received, TIMEOUT, "the control command")[0]
        assert msg.topic == "vesper/bell-7/control" and json.loads(msg.payload) == {"v": 2, "cmd": "system.health"}
        assert msg.qos == 1
        for path, expected in [("ghost", 404), ("bad%2Bid", 400)]:
            code, body = refused(web, f"/api/devices/{path}/health-check", "POST")
            assert code == expected and "error" in body
    finally:
        device.close()


def test_web_started_while_broker_is_down(
    make_config, start_ingest, start_web, broker, peer: Peer, db_path: Path
) -> None:
    cfg = make_config(web=WEB)
    peer.close()
    broker.stop()
    conn = store.open_store(db_path)
    with store.write(conn):
        store.mark_alive(conn, "known-1", time.time())  # recent: an id unheard for 30 days is forgotten
    conn.close()
    start_web(cfg)
    bind = config_mod.load(cfg).web.bind
    assert [d["id"] for d in get_json(bind, "/api/devices")] == ["known-1"]
    health = get_json(bind, "/healthz")
    assert health["status"] == "ok" and health["bridge"]["connected"] is False
    code, body = refused(bind, "/api/devices/known-1/health-check", "POST")
    assert code == 503 and "broker" in body["error"]
    stream = Stream(bind)

    broker.start()
    start_ingest(cfg)
    wait_for(lambda: get_json(bind, "/healthz")["bridge"]["connected"], TIMEOUT, "the bridge to reconnect")
    device = Peer(broker.port)
    try:
        device.publish("vesper/late-1/status/alerts", alert("Audio", "FAILED", "after the outage"))
        (event,) = stream.events(1)
        assert event["source_id"] == "late-1" and event["payload"]["state"] == "FAILED"
        assert [d["id"] for d in get_json(bind, "/api/devices")] == ["known-1", "late-1"]
    finally:
        device.close()
        stream.close()


def test_slow_client_is_dropped_and_others_do_not_notice(make_config, start_web, peer: Peer, db_path: Path) -> None:
    cfg = make_config(web={**WEB, "stream_queue_size": 4})
    start_web(cfg)
    bind = config_mod.load(cfg).web.bind
    wait_for(lambda: get_json(bind, "/healthz")["bridge"]["connected"], TIMEOUT, "the bridge to connect")
    host, _, port = bind.rpartition(":")
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect((host, int(port)))
    stalled.sendall(b"GET /events/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")  # and never reads again
    reader = Stream(bind)
    wait_for(lambda: get_json(bind, "/healthz")["streams"]["clients"] == 2, TIMEOUT, "two stream clients")
    # Large events fill the stalled socket's kernel buffers (MBs) in a few messages. They are stored
    # and rung the way the ingest does (the topic is a doorbell: the web sends the stored event); no
    # device message is that big.
    conn = store.open_store(db_path)

    def stored(payload: dict[str, Any]) -> dict[str, Any]:
        with store.write(conn):
            event_id = store.insert_event(conn, time.time(), "info", "info", "bell-s", dumps(payload))
        event = store.events_after(conn, event_id - 1, limit=1)[0]
        peer.publish("vesper/console/published", dumps(event))
        return event

    try:
        while get_json(bind, "/healthz")["streams"]["dropped"] == 0:
            event = stored({"big": "x" * 400_000})
            assert event["id"] < 200, "the stalled client was never dropped"
            assert reader.events(1)[0]["id"] == event["id"]  # the reading client gets every one, in step
        assert get_json(bind, "/healthz")["streams"]["clients"] == 1
        stalled.settimeout(TIMEOUT)
        while stalled.recv(1 << 20):  # the server shut the stalled connection: it ends, it does not hang
            pass
        stalled.close()
        last = stored({})
        assert reader.events(1)[0]["id"] == last["id"]
    finally:
        conn.close()
    reader.close()


def test_sigterm_ends_open_streams_promptly(make_config, start_web) -> None:
    cfg = make_config(web={"keepalive_s": 15.0})
    proc = start_web(cfg)
    stream = Stream(config_mod.load(cfg).web.bind)
    started = time.monotonic()
    assert proc.stop(timeout=TIMEOUT) == 0
    assert stream.response.readline() == b""  # the stream ended cleanly; the client resumes by id
    assert time.monotonic() - started < 4.0, "open streams held the worker until graceful_timeout"
    stream.close()
