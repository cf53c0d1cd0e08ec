"""Bulk health checks (§12) end to end: the real web (gunicorn, gevent), Mosquitto, the pace measured at the broker."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared import config as config_mod
from shared import store
from tests.conftest import Broker
from tests.support import Peer, Process, wait_for

DEVICES = 1000
PER_S = 100.0  # fast enough to finish in about 10 s, slow enough that a flood would show
MARGIN = 1.25  # the measured rate may exceed the pace this much (a late start catches up, timers are coarse)
# Any 100 consecutive arrivals may come this much faster than the pace: the receiver, on a busy machine, may read a
# backlog at once after a pause (0.79 s against 0.8 was seen); a flood (no pacing) takes milliseconds.
BURST_MARGIN = 2.0


def request(base: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One API request from loopback (no sign-in configured); (status, JSON answer)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_health_checks_to_1000_devices_arrive_all_and_paced(
    broker: Broker, db_path: Path, make_config: Callable[..., Path], start_web: Callable[..., Process]
) -> None:
    config = make_config(web={"bulk_health_checks_per_s": PER_S, "bulk_max": 2000, "health_check_interval_s": 300.0})
    conn = store.open_store(config_mod.load(config).database.target)
    try:
        with store.write(conn):
            rows = [(f"bell-{n:04d}", "North", ["fleet"]) for n in range(DEVICES)]
            store.put_entries(conn, ["site", "tags"], rows + [("other", "South", [])], time.time())
    finally:
        conn.close()
    web = start_web(config)
    base = f"http://{config_mod.load(config).web.bind}"
    wait_for(lambda: request(base, "GET", "/healthz")[1]["bridge"]["connected"], 30, "the web's bridge")
    control = Peer(broker.port, subscribe=["vesper/+/control"])
    try:
        status, answer = request(base, "POST", "/api/bulk", {"filter": {"tag": "fleet"}, "action": "health_check"})
        assert (status, answer["count"], answer["per_s"]) == (202, DEVICES, PER_S), answer
        again = request(base, "POST", "/api/bulk", {"filter": {"site": "South"}, "action": "health_check"})
        assert again[0] == 409 and "under way" in again[1]["error"]  # one run at a time per worker
        wait_for(lambda: len(control.received) >= DEVICES, DEVICES / PER_S * 6, f"{DEVICES} health checks")
        arrived = [(m.timestamp, m.topic, json.loads(m.payload)) for m in control.received]
    finally:
        control.close()
    assert sorted(topic for _, topic, _ in arrived) == [f"vesper/bell-{n:04d}/control" for n in range(DEVICES)]
    assert all(payload == {"v": 2, "cmd": "system.health"} for _, _, payload in arrived)
    span = arrived[-1][0] - arrived[0][0]
    rate = (DEVICES - 1) / span
    print(f"bulk health checks: {DEVICES} in {span:.1f} s = {rate:.1f}/s (pace {PER_S:g}/s)")
    assert rate <= PER_S * MARGIN
    # No burst either: any 100 consecutive arrivals take at least 100 / pace / BURST_MARGIN seconds.
    window = 100
    tightest = min(arrived[i + window][0] - arrived[i][0] for i in range(DEVICES - window))
    assert tightest >= window / PER_S / BURST_MARGIN, tightest
    web.wait_output("ended: filter {'tag': 'fleet'}, 1000 sent, 0 skipped", 30)
    status, repeat = request(base, "POST", "/api/bulk", {"filter": {"q": "bell-0001"}, "action": "health_check"})
    assert status == 202  # the device's interval (web.health_check_interval_s) skips it: counted in the log
    web.wait_output("0 sent, 1 skipped", 30)
