"""The simulator's pure schedule: what a fleet publishes over simulated time."""

from __future__ import annotations

import json
from collections import Counter

from vesper_sim.fleet import Fleet


def test_heartbeats_every_period_scaled_by_speed():
    fleet = Fleet(10, speed=10.0, seed=3, silent=False)
    out = fleet.due(30.0)  # 300 simulated seconds: ten heartbeats per device
    beats = Counter(m.topic for m in out if m.topic.endswith("/heartbeat"))
    assert len(beats) == 10 and all(n in (10, 11) for n in beats.values()), beats
    assert all(m.retain and m.qos == 1 for m in out if m.topic.endswith("/heartbeat"))


def test_alerts_include_recoveries_and_follow_the_brief():
    fleet = Fleet(20, speed=100.0, seed=4, silent=False)
    alerts = [json.loads(m.payload) for m in fleet.due(60.0) if m.topic.endswith("/alerts")]
    states = Counter(a["state"] for a in alerts)
    assert states["CLEARED"] > 0 and states["WARNING"] > 0
    assert all(set(a) <= {"subsystem", "state", "msg"} for a in alerts)


def test_silent_devices_stop_heartbeating_for_a_while():
    fleet = Fleet(50, speed=1.0, seed=5, silent=True)
    fleet.due(1200.0)
    assert any(d.silent_until > 0 for d in fleet.devices)


def test_health_check_reports_through_the_alerts_topic():
    fleet = Fleet(1, speed=1.0, seed=6, silent=False)
    device = fleet.devices[0]
    device.alerts = {"Audio": "WARNING", "Motor": "FAILED", "Network": "CRITICAL"}
    out = []
    for _ in range(10):
        out += fleet.health_check(device.id)
    assert any(json.loads(m.payload)["state"] == "CLEARED" for m in out)
    assert all(m.topic == f"vesper/{device.id}/status/alerts" for m in out)
    assert fleet.health_check("no-such-device") == []
