"""Standby ingests on one PostgreSQL (§10): one leads and alone is on MQTT; kill -9 or SIGSTOP of it, and a standby
takes over with nothing lost, nothing reordered, and nothing committed by the old leader once it resumes."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

from shared import store
from tests.conftest import write_config
from tests.support import Process, alert_events, wait_for
from vesper_sim.sequences import implied_events, implied_state, transitions

EVERY_CHANGE = {"flap_transitions": 0}  # each change its event (tests/faults/test_ingest_faults.py says why)
LOST_LEAD = 4


def mqtt_connections(pid: int, port: int) -> int:
    """How many TCP connections process `pid` has open to the broker's port (from /proc, as the kernel sees it)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote_port, state, inode = int(fields[2].split(":")[1], 16), fields[3], fields[9]
        count += inode in inodes and remote_port == port and state == "01"  # 01: ESTABLISHED
    return count


def logged_at(proc: Process, text: str) -> float:
    """The wall-clock time of the first log line containing `text` (the ingest's log lines start with asctime)."""
    line = next(line for line in proc.output().splitlines() if text in line)
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def per_device(events: list[tuple[str, str, str, str | None]]) -> dict[str, list[tuple[str, str, str, str | None]]]:
    """Events grouped by device, each device's in the order given."""
    out: dict[str, list[tuple[str, str, str, str | None]]] = defaultdict(list)
    for event in events:
        out[event[1]].append(event)
    return dict(out)


def two_ingests(tmp_path, broker, pg_url, start_ingest):
    """A leader connected to MQTT and a standby waiting for the lock, on one PostgreSQL database."""
    cfg = write_config(tmp_path / "vesper.toml", broker.port, pg_url, alerts=EVERY_CHANGE)
    leader = start_ingest(cfg)
    standby = start_ingest(cfg, wait_connected=False)
    standby.wait_output("standby:")
    return leader, standby


def test_only_the_leader_connects_to_mqtt(tmp_path, broker, pg_url, start_ingest):
    leader, standby = two_ingests(tmp_path, broker, pg_url, start_ingest)
    assert mqtt_connections(leader.proc.pid, broker.port) == 1
    assert mqtt_connections(standby.proc.pid, broker.port) == 0
    assert "connected to" not in standby.output() and "leads; waiting" in standby.output()
    assert leader.stop() == 0
    standby.wait_output("connected to")
    assert mqtt_connections(standby.proc.pid, broker.port) == 1


def test_standby_waiting_stops_on_sigterm(tmp_path, broker, pg_url, start_ingest):
    _, standby = two_ingests(tmp_path, broker, pg_url, start_ingest)
    assert standby.stop(timeout=5) == 0
    assert "connected to" not in standby.output()


def burst(peer, seq, at: int, conn, leader: Process, sig: signal.Signals) -> float:
    """Publish `seq` at QoS 1; before message `at`, once the leader commits, signal it; returns when (wall clock)."""
    sent_at = 0.0
    for i, (device, body) in enumerate(seq):
        if i == at:
            wait_for(lambda: store.last_event_id(conn) > 200, 30, "the leader to be committing")
            leader.proc.send_signal(sig)
            sent_at = time.time()
        peer.client.publish(f"vesper/{device}/status/alerts", json.dumps(body), qos=1)
    return sent_at


def assert_as_implied(conn, seq) -> list[tuple[str, str, str, str | None]]:
    """The state the sequence implies, and every transition's event once, in order per device."""
    expected = implied_state(seq)
    wait_for(lambda: store.all_alerts(conn) == expected, 120, "the active-alert table to match the sequence")
    events = alert_events(conn)
    assert per_device(events) == per_device(implied_events(seq))
    return events


def test_kill_9_of_the_leader_mid_burst_a_standby_leads_within_2s(tmp_path, broker, pg_url, start_ingest, peer):
    leader, standby = two_ingests(tmp_path, broker, pg_url, start_ingest)
    seq = transitions(6_000, 600, seed=31)
    conn = store.connect(pg_url, readonly=True)
    killed_at = burst(peer, seq, 3_000, conn, leader, signal.SIGKILL)
    events = assert_as_implied(conn, seq)
    takeover_s = logged_at(standby, "connected to") - killed_at
    assert takeover_s < 2.0, f"the standby led {takeover_s:.2f} s after the kill"
    assert leader.proc.wait(5) == -signal.SIGKILL
    conn.close()
    print(f"standby/kill: {len(seq):,} transitions, {len(events):,} events once, in order; takeover {takeover_s:.2f} s")


def test_sigstop_of_the_leader_a_standby_leads_and_the_resumed_one_commits_nothing(
    tmp_path, broker, pg_url, start_ingest, peer
):
    leader, standby = two_ingests(tmp_path, broker, pg_url, start_ingest)
    seq = transitions(5_000, 500, seed=32)
    conn = store.connect(pg_url, readonly=True)
    try:
        stopped_at = burst(peer, seq, 2_500, conn, leader, signal.SIGSTOP)
        events = assert_as_implied(conn, seq)
        takeover_s = logged_at(standby, "connected to") - stopped_at
        assert takeover_s < 10.0, f"the standby led {takeover_s:.2f} s after SIGSTOP"
        last = store.last_event_id(conn)
    finally:
        leader.proc.send_signal(signal.SIGCONT)
    assert leader.proc.wait(15) == LOST_LEAD, leader.output()
    assert "lost the database session that holds the leader lock" in leader.output()
    assert store.last_event_id(conn) == last and alert_events(conn) == events
    assert mqtt_connections(standby.proc.pid, broker.port) == 1
    conn.close()
    print(f"standby/sigstop: {len(seq):,} transitions, takeover {takeover_s:.2f} s, the resumed leader exited 4")
