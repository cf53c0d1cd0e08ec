"""The ingest's drain with history on (history.retention_days = 400) beside off (= 0): what episodes cost it (§13).

A round: the real ingest sees a quarter of the backlog's devices heartbeat, then declares them offline (a 1 s
heartbeat timeout: each one an outage opened), and stops; a backlog is queued for its persistent session:
heartbeats that bring those devices back (outages closed), alert transitions raised and cleared (incidents
opened, worsened, closed: vesper_sim.sequences) and heartbeats of devices that stay online, interleaved;
then the ingest starts again (timeout an hour, so none goes offline meanwhile) and drains it. Rate = messages /
(the sentinel's commit - the first event's time), as bench/ingest_throughput.py. Rounds alternate on and off.
Run: .venv/bin/python -m bench.history_ingest [--messages 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.common import Stack
from bench.table import Table
from shared import store
from vesper_sim.sequences import transitions

Message = tuple[str, bytes]  # topic, payload
SENTINEL: Message = ("vesper/sentinel/status/alerts", b'{"subsystem": "End", "state": "WARNING", "msg": "end"}')


def heartbeat(device: str) -> Message:
    """A device's heartbeat."""
    return f"vesper/{device}/status/heartbeat", b'{"fw": "v155", "uptime": 1}'


def backlog(messages: int, seed: int) -> tuple[list[str], list[Message]]:
    """The devices taken offline first, and the backlog: their return, alerts, steady heartbeats, interleaved."""
    back = [f"gone-{n:05d}" for n in range(messages // 4)]
    alerts = [(f"vesper/{d}/status/alerts", json.dumps(b).encode()) for d, b in transitions(messages // 2, 1000, seed)]
    steady = [heartbeat(f"dev-{n % 1000:04d}") for n in range(messages - len(back) - len(alerts))]
    parts = [[heartbeat(d) for d in back], alerts, steady]
    spread = sorted((j / len(p), k, j) for k, p in enumerate(parts) for j in range(len(p)))  # each part evenly
    return back, [parts[k][j] for _, k, j in spread] + [SENTINEL]


def publish(port: int, seq: list[Message]) -> None:
    """Publish at QoS 1 and wait until the broker has each."""
    pub = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-history-pub")
    pub.max_inflight_messages_set(100)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    infos = [pub.publish(topic, body, qos=1) for topic, body in seq]
    for info in infos:
        info.wait_for_publish(120)
    pub.disconnect()
    pub.loop_stop()


def wait_for(check: Any, what: str, timeout: float = 120.0) -> None:
    """Poll `check()` until true."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"bench.history_ingest: {what} not within {timeout:.0f} s")
        time.sleep(0.01)


def count(conn: store.Connection, sql: str, args: tuple[Any, ...] = ()) -> int:
    """One count."""
    return int(conn.execute(sql, args).fetchone()[0])


def one_round(messages: int, on: bool, seed: int, tmp: Path) -> dict[str, float]:
    """One drain; its rate, the episodes it wrote, and whether every offline device came back."""
    stack = Stack(tmp, liveness={"heartbeat_timeout_s": 1.0, "sweep_interval_s": 0.2},
                  history={"retention_days": 400.0 if on else 0.0})  # fmt: skip
    back, seq = backlog(messages, seed)
    try:
        ingest = stack.ingest()
        conn = store.open_store(stack.db)
        publish(stack.port, [heartbeat(d) for d in back])
        offline = "SELECT count(*) FROM devices WHERE liveness = 'offline'"
        wait_for(lambda: count(conn, offline) >= len(back), "the first devices offline")
        ingest.send_signal(signal.SIGTERM)
        ingest.wait(30)
        text = stack.config.read_text()
        stack.config.write_text(text.replace("heartbeat_timeout_s = 1.0", "heartbeat_timeout_s = 3600.0"))
        before = store.last_event_id(conn)
        opened = count(conn, "SELECT count(*) FROM episodes")
        publish(stack.port, seq)
        stack.ingest()
        wait_for(lambda: store.device(conn, "sentinel") is not None, "the sentinel")
        done = time.time()
        first = float(conn.execute("SELECT min(ts) FROM events WHERE id > ?", (before,)).fetchone()[0])
        written = count(conn, "SELECT count(*) FROM episodes") - opened
        closed = count(conn, "SELECT count(*) FROM episodes WHERE ended IS NOT NULL")
        still = count(conn, offline)
        conn.close()
    finally:
        stack.close()
    return {"rate": (len(seq) - 1) / (done - first), "new": written, "closed": closed, "opened": opened,
            "still_offline": still}  # fmt: skip


def measure(messages: int, rounds: int) -> dict[str, list[dict[str, float]]]:
    """Rounds alternating history on and off."""
    runs: dict[str, list[dict[str, float]]] = {"on": [], "off": []}
    for r in range(rounds):
        for mode in ("on", "off") if r % 2 == 0 else ("off", "on"):
            with tempfile.TemporaryDirectory(prefix=f"vesper-history-{mode}-") as tmp:
                runs[mode].append(one_round(messages, mode == "on", r, Path(tmp)))
            print(f"bench.history_ingest: round {r + 1} history {mode}: {runs[mode][-1]['rate']:,.0f} msg/s",
                  file=sys.stderr, flush=True)  # fmt: skip
    return runs


def rows(table: Table, messages: int, rounds: int) -> None:
    """The table's rows: the drain with history on beside off."""
    runs = measure(messages, rounds)
    on, off = (statistics.median(x["rate"] for x in runs[m]) for m in ("on", "off"))
    last = runs["on"][-1]
    table.add("ingest", f"drain of {messages:,} queued messages with history on (median of {rounds})",
              f"{on:,.0f} msg/s", yard=f"history off: {off:,.0f} msg/s", ratio=on / off, target=">= 0.9",
              met=on / off >= 0.9)  # fmt: skip
    table.add("ingest", f"  episodes a round: {last['opened']:,.0f} outages opened before, during the drain",
              f"{last['new']:,.0f} new, {last['closed']:,.0f} closed")  # fmt: skip
    back = all(x["still_offline"] == 0 for m in runs.values() for x in m)
    table.add("ingest", "  every offline device back online", "yes" if back else "NO", target="yes", met=back)


def main(argv: list[str] | None = None) -> int:
    """Print the rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    table = Table()
    rows(table, args.messages, args.rounds)
    table.print([f"ingest drain, history on beside off: {args.messages:,} messages"], [])
    return 0


if __name__ == "__main__":
    sys.exit(main())
