"""Fault injection on the real ingest and broker: kills, stops, outages (issue: faults 1, 2, 4, 5, 11)."""

from __future__ import annotations

import json
import random
import threading
import time

from shared import store
from tests.support import Peer, alert_events, wait_for
from vesper_sim.sequences import implied_events, implied_state, transitions

# These bursts change each subsystem's state far faster than flapping allows, to check that every change
# becomes its event: flap detection would rightly hide most of them (tests/test_alert_lifecycle.py has it).
EVERY_CHANGE = {"flap_transitions": 0}


def test_sigkill_at_random_points_loses_nothing(make_config, start_ingest, peer, read_db):
    cfg = make_config(alerts=EVERY_CHANGE)
    seq = transitions(10_000, 1_000, seed=11)
    rng = random.Random(5)
    kill_at = sorted(rng.sample(range(500, 9_500), 6))
    ingest = start_ingest(cfg)
    kills = 0
    for i, (device, body) in enumerate(seq):
        peer.client.publish(f"vesper/{device}/status/alerts", json.dumps(body), qos=1)
        if i in kill_at:
            floor = store.last_event_id(read_db())
            wait_for(lambda f=floor: store.last_event_id(read_db()) > f, 30, "the ingest to be committing")
            time.sleep(rng.uniform(0, 0.05))  # a random point inside its batches
            ingest.kill()
            kills += 1
            ingest = start_ingest(cfg)
    expected = implied_state(seq)
    wait_for(lambda: store.all_alerts(read_db()) == expected, 120, "the active-alert table to match the sequence")
    conn = read_db()
    lost = len(set(expected) ^ set(store.all_alerts(conn)))
    events = alert_events(conn)
    want = implied_events(seq)
    assert lost == 0 and store.integrity_ok(conn), f"{len(seq):,} transitions, {kills} kills, {lost} lost"
    assert sorted(events, key=str) == sorted(want, key=str), (
        f"{len(seq):,} transitions, {kills} kills: {len(events)} events, {len(want)} implied"
    )
    assert kills >= 5
    print(
        f"faults/1: {len(seq):,} of {len(seq):,} transitions, {kills} kills, 0 lost, {len(events):,} events, each once"
    )


def test_sigterm_during_burst_finishes_work_and_exits_zero(make_config, start_ingest, peer, read_db):
    cfg = make_config(alerts=EVERY_CHANGE)
    seq = transitions(5_000, 500, seed=12)
    ingest = start_ingest(cfg)
    for i, (device, body) in enumerate(seq):
        peer.client.publish(f"vesper/{device}/status/alerts", json.dumps(body), qos=1)
        if i == 2_500:
            wait_for(lambda: store.last_event_id(read_db()) > 100, 30, "the ingest to be committing")
            t0 = time.monotonic()
            code = ingest.stop()
            stop_s = time.monotonic() - t0
            assert code == 0 and stop_s < 5, f"exit {code} after {stop_s:.2f}s"
            assert "drained" in ingest.output()
            ingest = start_ingest(cfg)
    expected = implied_state(seq)
    wait_for(lambda: store.all_alerts(read_db()) == expected, 60, "the active-alert table to match the sequence")
    events = alert_events(read_db())
    assert sorted(events, key=str) == sorted(implied_events(seq), key=str)
    print(f"faults/2: SIGTERM exit 0 in {stop_s:.2f}s; {len(seq):,} of {len(seq):,} transitions applied, 0 lost")


class Heartbeater:
    """A device that heartbeats every `period` seconds through broker outages until stopped."""

    def __init__(self, port: int, device_id: str, period: float = 0.25) -> None:
        self.device_id = device_id
        self.period = period
        self.stop = threading.Event()
        self.peer = Peer(port, client_id=f"dev-{device_id}")
        self.peer.client.reconnect_delay_set(0.1, 0.5)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(self.period):
            if self.peer.client.is_connected():
                self.peer.client.publish(f"vesper/{self.device_id}/status/heartbeat", "{}", qos=1)

    def close(self) -> None:
        """Stop heartbeating (the device dies) and disconnect."""
        self.stop.set()
        self.thread.join()
        self.peer.close()


def offline_events(conn) -> list[str]:
    return [e["source_id"] for e in store.events_after(conn, 0, 100_000) if e["type"] == "device_offline"]


def outage(broker, read_db, take_down, bring_back, timeout: float) -> tuple[list[str], float]:
    """Five live devices and one that dies while `take_down` .. `bring_back` lasts two timeouts.

    Returns the devices reported offline by the end and how long after `bring_back` the dead
    one was reported.
    """
    alive = [Heartbeater(broker.port, f"alive-{i}") for i in range(5)]
    dying = Heartbeater(broker.port, "dying")
    try:
        wait_for(lambda: len(store.devices(read_db())) == 6, 10, "six devices online")
        take_down()
        dying.close()  # really dies while the console cannot hear it
        time.sleep(timeout * 2)  # the outage itself lasts two timeouts
        bring_back()
        back = time.monotonic()
        wait_for(lambda: offline_events(read_db()) == ["dying"], 20, "the dead device to be reported")
        reported = time.monotonic() - back
        time.sleep(timeout)  # the live devices keep talking: still nobody else is reported
        return offline_events(read_db()), reported
    finally:
        for hb in alive:
            hb.close()


def test_broker_outage_longer_than_timeout_cries_no_wolf(broker, make_config, start_ingest, read_db):
    timeout = 2.0
    start_ingest(make_config(liveness={"heartbeat_timeout_s": timeout}))
    offline, reported = outage(broker, read_db, broker.stop, broker.start, timeout)
    assert offline == ["dying"], f"false offline events: {offline}"
    assert reported >= timeout * 0.9, f"reported {reported:.2f}s after the broker returned, inside the grace"
    print(
        f"faults/4: outage {timeout * 2:.0f}s > timeout {timeout:.0f}s: 0 false device_offline of 5 live devices;"
        f" the dead one reported {reported:.1f}s after reconnect"
    )


def test_ingest_down_longer_than_timeout_cries_no_wolf(broker, make_config, start_ingest, read_db):
    timeout = 2.0
    cfg = make_config(liveness={"heartbeat_timeout_s": timeout})
    ingest = start_ingest(cfg)
    offline, reported = outage(broker, read_db, ingest.kill, lambda: start_ingest(cfg), timeout)
    assert offline == ["dying"], f"false offline events: {offline}"
    assert reported >= timeout * 0.9, f"reported {reported:.2f}s after restart, inside the grace"
    print(f"faults/5: ingest down {timeout * 2:.0f}s: 0 false device_offline of 5; the dead one after {reported:.1f}s")
