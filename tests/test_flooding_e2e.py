"""One device cannot flood the timeline (SPEC §16): the real ingest process, a real Mosquitto, 1,000 alert messages."""

from __future__ import annotations

import json
from typing import Any

from shared import store
from tests.support import Peer, wait_for

TIMEOUT = 60.0
PAIRS = 500  # raise + clear of a never-reused subsystem: 1,000 messages
CALM_EVERY = 50  # another device's alert every 50 messages: 20 of them, all to be stored
WINDOW = 20  # unacknowledged publishes at most: paced, the broker queues (never drops) and the test stays quick


def publish_paced(peer: Peer, messages: list[tuple[str, dict[str, Any]]]) -> None:
    """QoS 1, in order, with at most WINDOW unconfirmed by the broker at a time."""
    pending = []
    for topic, payload in messages:
        pending.append(peer.client.publish(topic, json.dumps(payload), qos=1))
        if len(pending) >= WINDOW:
            pending.pop(0).wait_for_publish(TIMEOUT)
    for info in pending:
        info.wait_for_publish(TIMEOUT)


def flood() -> list[tuple[str, dict[str, Any]]]:
    """500 raise+clear pairs by `noisy`, a calm device's alert every 50 messages, then noisy's last two alerts."""
    out: list[tuple[str, dict[str, Any]]] = []
    for i in range(PAIRS):
        for state in ("FAILED", "CLEARED"):
            out.append(("vesper/noisy/status/alerts", {"subsystem": f"Sub-{i}", "state": state}))
            if len(out) % (CALM_EVERY + 1) == CALM_EVERY:
                out.append(("vesper/calm/status/alerts", {"subsystem": f"Calm-{len(out)}", "state": "WARNING"}))
    out.append(("vesper/noisy/status/alerts", {"subsystem": "Last-A", "state": "CRITICAL", "msg": "still on"}))
    out.append(("vesper/noisy/status/alerts", {"subsystem": "Last-B", "state": "WARNING"}))
    return out


def test_a_flooding_device_makes_one_event_past_the_limit_and_its_state_stays_true(
    make_config, start_ingest, peer: Peer, read_db
) -> None:
    """Without the limit these 1,000 messages made 1,000 events; now at most 120 and one device_flooding."""
    start_ingest(make_config(), wait_connected=False).wait_output("connected to", timeout=TIMEOUT)
    messages = flood()
    calm = sum(1 for topic, _ in messages if "/calm/" in topic)
    publish_paced(peer, messages)

    def settled() -> bool:
        conn = read_db()
        noisy = [(a["subsystem"], a["state"]) for a in store.alerts(conn, "noisy")]
        return noisy == [("Last-A", "CRITICAL"), ("Last-B", "WARNING")] and len(store.alerts(conn, "calm")) == calm

    wait_for(settled, TIMEOUT, "every message applied: noisy's last alerts and calm's all active")
    conn = read_db()
    noisy = [e["type"] for e in store.events_after(conn, 0, limit=100_000, device="noisy")]
    assert noisy.count("device_flooding") == 1, noisy
    assert len(noisy) <= 120 + 1 and noisy[-1] == "device_flooding", len(noisy)
    assert noisy[:-1] == ["alert", "alert_cleared"] * 60
    assert [e["type"] for e in store.events_after(conn, 0, limit=100_000, device="calm")] == ["alert"] * calm
    device = store.device(conn, "noisy")
    assert device["liveness"] == "online" and device["health"] == "critical"
    flooding = store.events_after(conn, 0, limit=100_000, device="noisy")[-1]
    assert flooding["severity"] == "warning" and flooding["payload"] == {"limit": 120, "window_s": 60}
    expected = 2 * PAIRS + 2 - 120  # every would-be event past the 120th, the one the device_flooding replaced included
    counted = lambda: store.counters(read_db()).get("alerts.flood_suppressed") == expected  # noqa: E731
    wait_for(counted, TIMEOUT, f"alerts.flood_suppressed saved as {expected}")
