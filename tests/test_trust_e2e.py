"""SPEC §11 for real: a stopped ingest, a lost broker and the watchdog, seen through the API and a webhook."""

from __future__ import annotations

import json
import os
import signal
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from shared import config as config_mod
from shared import store
from shared.pipeline import STATE_KEY
from tests.support import Peer, Process, wait_for
from tests.test_notify_e2e import with_notify

TIMEOUT = 40.0
# A SIGSTOP longer than leader_timeout_s loses a PostgreSQL leader its lock (it exits for a standby, §10): keep it.
HOLD_LEAD = {"leader_timeout_s": 60.0}


def http(config: Path, path: str) -> tuple[int, Any]:
    """GET on the running web: status and JSON body (errors included)."""
    url = f"http://{config_mod.load(config).web.bind}{path}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def status(config: Path) -> dict[str, Any]:
    """GET /api/status."""
    return http(config, "/api/status")[1]


def not_ok(config: Path) -> dict[str, Any] | None:
    """GET /api/status's answer while it is not ok, else None."""
    found = status(config)
    return None if found["ok"] else found


def ingest_state(read_db: Any) -> dict[str, Any]:
    """What the ingest recorded at its last sweep."""
    return json.loads(store.get_meta(read_db(), STATE_KEY) or "{}")


def event_types(read_db: Any) -> list[str]:
    """Every stored event's type, oldest first."""
    return [e["type"] for e in store.recent_events(read_db(), limit=1000)]


@pytest.fixture
def stopped() -> Iterator[list[Process]]:
    """Processes a test SIGSTOPs: each is continued at teardown, whatever happened."""
    held: list[Process] = []
    yield held
    for proc in held:
        if proc.proc.poll() is None:
            os.kill(proc.proc.pid, signal.SIGCONT)


def test_a_stopped_ingest_is_reported_and_recovery_needs_no_restart(
    make_config, start_ingest, start_web, peer: Peer, stopped: list[Process]
) -> None:
    config = make_config(web={"stale_after_s": 2.0}, database=HOLD_LEAD)
    ingest = start_ingest(config)
    start_web(config)
    peer.publish("vesper/bell-1/status/heartbeat", {"uptime": 1})
    wait_for(lambda: http(config, "/api/devices")[1], TIMEOUT, "bell-1 listed")
    wait_for(lambda: status(config)["ok"], TIMEOUT, "the pipeline ok")
    assert http(config, "/api/devices")[1][0]["liveness_as_of"] is None

    stopped.append(ingest)
    os.kill(ingest.proc.pid, signal.SIGSTOP)
    blind = wait_for(lambda: not_ok(config), TIMEOUT, "the status not ok")
    assert any("The ingest has not reported for" in p for p in blind["problems"]), blind
    code, body = http(config, "/healthz/pipeline")
    assert code == 503 and body["problems"] and not body["ok"]
    assert http(config, "/healthz")[0] == 200  # the web itself is well: a load balancer keeps it
    [device] = http(config, "/api/devices")[1]
    assert device["liveness"] == "online" and device["liveness_as_of"] == blind["liveness_as_of"] is not None
    assert http(config, "/api/devices/bell-1")[1]["liveness_as_of"] is not None

    os.kill(ingest.proc.pid, signal.SIGCONT)
    wait_for(lambda: status(config)["ok"], TIMEOUT, "the status ok again")
    assert http(config, "/healthz/pipeline")[0] == 200
    assert http(config, "/api/devices")[1][0]["liveness_as_of"] is None
    metrics = urllib.request.urlopen(f"http://{config_mod.load(config).web.bind}/metrics", timeout=10).read().decode()
    assert "vesper_pipeline_ok 1.0" in metrics and "vesper_ingest_broker_connected 1.0" in metrics


class Heartbeats:
    """A device that heartbeats every half second through broker outages (publishes while away are dropped)."""

    def __init__(self, port: int, device: str) -> None:
        self.peer = Peer(port)
        self.peer.client.reconnect_delay_set(0.2, 1)
        self.topic = f"vesper/{device}/status/heartbeat"
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopping.wait(0.5):  # pacing a device, not waiting for a condition
            self.peer.client.publish(self.topic, b"{}", qos=0)

    def close(self) -> None:
        """Stop heartbeating and disconnect."""
        self.stopping.set()
        self.thread.join(5)
        self.peer.close()


def test_a_broker_outage_is_one_interruption_one_message_and_no_offline(
    make_config, start_ingest, start_web, broker, webhook, read_db
) -> None:
    timeout = 4.0
    config = make_config(liveness={"heartbeat_timeout_s": timeout, "interrupted_after_s": 1.0, "sweep_interval_s": 0.2})
    rule = {"channel": "hook", "types": ["monitoring_interrupted", "device_offline"], "group_wait_s": 0.5}
    config = with_notify(config, {"hook": webhook.url}, [{**rule, "resolved": False}])
    ingest = start_ingest(config)
    start_web(config)
    device = Heartbeats(broker.port, "bell-1")
    try:
        wait_for(lambda: http(config, "/api/devices")[1], TIMEOUT, "bell-1 listed")
        broker.stop(kill=True)
        wait_for(lambda: "monitoring_interrupted" in event_types(read_db), TIMEOUT, "monitoring_interrupted stored")
        blind = wait_for(lambda: not_ok(config), TIMEOUT, "the status not ok")
        assert any("not connected to the broker" in p for p in blind["problems"]), blind
        broker.start()
        wait_for(lambda: "monitoring_resumed" in event_types(read_db), TIMEOUT, "monitoring_resumed stored")
        since = ingest_state(read_db)["connected_since"]
        # Every device's grace runs a full timeout from the reconnect: wait until the sweeps have passed it.
        wait_for(lambda: ingest_state(read_db)["last_sweep_at"] > since + timeout + 1, TIMEOUT, "sweeps past the grace")
        webhook.wait(lambda h: len(h.messages) >= 1, TIMEOUT, "the interruption message")
    finally:
        device.close()
    types = event_types(read_db)
    assert types.count("monitoring_interrupted") == 1 and types.count("monitoring_resumed") == 1, types
    assert "device_offline" not in types, types
    [message] = webhook.messages
    assert "not receiving device data since" in message["message"] and "/devices/" not in message["message"]
    assert ingest.proc.poll() is None


class PushCheck:
    """A Healthchecks-like push receiver on loopback: counts the GETs."""

    def __init__(self) -> None:
        self.pings = 0
        check = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the http.server API)
                check.pings += 1
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"OK")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ping/abc"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


def test_the_watchdog_pings_while_the_ingest_sees_and_not_while_it_is_stopped(
    make_config, start_ingest, stopped: list[Process]
) -> None:
    check = PushCheck()
    try:
        config = make_config(notify={"watchdog_url": check.url, "watchdog_interval_s": 1.0}, database=HOLD_LEAD)
        ingest = start_ingest(config)
        wait_for(lambda: check.pings >= 2, TIMEOUT, "two pings")
        stopped.append(ingest)
        os.kill(ingest.proc.pid, signal.SIGSTOP)
        held = check.pings
        threading.Event().wait(3.0)  # a window in which no ping may arrive (absence needs a span of time)
        assert check.pings <= held + 1  # at most one already in flight when the process stopped
        held = check.pings
        os.kill(ingest.proc.pid, signal.SIGCONT)
        wait_for(lambda: check.pings >= held + 2, TIMEOUT, "pings again after SIGCONT")
    finally:
        check.close()
