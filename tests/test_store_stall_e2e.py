"""A store stall longer than the heartbeat timeout is not the fleet's outage (SPEC §16): real Mosquitto, ingest, web.

The database is held by another connection (SQLite: an exclusive lock on the file, past its 10 s busy
timeout so writes fail; PostgreSQL: an ACCESS EXCLUSIVE lock on the devices table, which the ingest waits
on) while three devices heartbeat and one raises alerts at QoS 1. Meanwhile the pipeline is reported not
ok; after it, no device is declared offline, every alert is stored in order, and the ingest said so once.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from shared import config as config_mod
from shared import store
from tests.faults.test_web_faults import metrics
from tests.support import Peer, wait_for
from tests.test_trust_e2e import HOLD_LEAD, Heartbeats, event_types, http, ingest_state, status
from tests.test_web_e2e import alert

TIMEOUT = 60.0
HEARTBEAT_TIMEOUT_S = 3.0
STATES = ["WARNING", "CLEARED", "CRITICAL", "CLEARED"]


class Held:
    """Another connection holding what the ingest writes, until released."""

    def __init__(self, db: Path | str) -> None:
        self.conn = store.connect(db)
        if self.conn.dialect.name == "postgresql":
            self.conn.execute("BEGIN")
            self.conn.execute("LOCK TABLE devices IN ACCESS EXCLUSIVE MODE")
        else:
            self.conn.execute("BEGIN EXCLUSIVE")
        self.at = time.monotonic()

    def release(self) -> None:
        """Roll back and close: the ingest's writes go through."""
        self.conn.execute("ROLLBACK")
        self.conn.close()


class Watcher:
    """Polls /healthz/pipeline in a thread, keeping every status code seen."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.codes: list[int] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopping.wait(0.2):  # a poller's pace, not a wait for a condition
            self.codes.append(http(self.config, "/healthz/pipeline")[0])

    def close(self) -> None:
        """Stop polling."""
        self.stopping.set()
        self.thread.join(15)


def bell0_alerts(read_db: Any) -> list[str]:
    """bell-0's alert transitions as stored, oldest first."""
    events = store.recent_events(read_db(), limit=1000)
    mine = [e for e in events if e["source_id"] == "bell-0" and e["type"] in ("alert", "alert_cleared")]
    return ["CLEARED" if e["type"] == "alert_cleared" else e["payload"]["state"] for e in mine]


def test_a_store_stall_past_the_heartbeat_timeout_declares_no_device_offline(
    make_config, start_ingest, start_web, broker, db_path, read_db
) -> None:
    liveness = {"heartbeat_timeout_s": HEARTBEAT_TIMEOUT_S, "sweep_interval_s": 0.2}
    config = make_config(liveness=liveness, web={"stale_after_s": 1.5}, database=HOLD_LEAD)
    ingest = start_ingest(config)
    start_web(config)
    devices = [Heartbeats(broker.port, f"bell-{i}") for i in range(3)]
    peer = Peer(broker.port)
    watcher = None
    try:
        wait_for(lambda: len(http(config, "/api/devices")[1]) == 3, TIMEOUT, "three devices listed")
        wait_for(lambda: status(config)["ok"], TIMEOUT, "the pipeline ok")
        held = Held(db_path)
        sqlite = not isinstance(db_path, str)
        hold_s = 12.0 if sqlite else 8.0  # SQLite: past its 10 s busy timeout, so a write fails, not only waits
        try:
            watcher = Watcher(config)
            for state in STATES:
                peer.publish("vesper/bell-0/status/alerts", alert("Audio", state, "amp"), qos=1)
            wait_for(lambda: 503 in watcher.codes, TIMEOUT, "the pipeline reported not ok during the stall")
            threading.Event().wait(max(0.0, hold_s - (time.monotonic() - held.at)))  # the stall's length: a premise
        finally:
            held.release()
        released = time.time()
        wait_for(lambda: bell0_alerts(read_db) == STATES, TIMEOUT, "every alert stored, in order")
        # Every device's grace runs a full timeout from the write that worked: wait until sweeps have passed it.
        past = released + HEARTBEAT_TIMEOUT_S + 1
        wait_for(lambda: ingest_state(read_db)["last_sweep_at"] > past, TIMEOUT, "sweeps past the grace")
        wait_for(lambda: status(config)["ok"], TIMEOUT, "the pipeline ok again")
    finally:
        if watcher is not None:
            watcher.close()
        for device in devices:
            device.close()
        peer.close()
    assert "device_offline" not in event_types(read_db)
    assert all(d["liveness"] == "online" for d in http(config, "/api/devices")[1])
    log = ingest.output()
    assert "every device gets a full heartbeat timeout from now" in log and "Traceback" not in log
    if sqlite:
        assert log.count("database write failed") == 1, log  # said once, not a line a second
        bind = config_mod.load(config).web.bind
        assert metrics(bind).get("vesper_ingest_store_write_failures_total", 0) >= 1

