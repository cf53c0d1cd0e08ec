"""Ingest throughput: QoS 1 alert transitions per second with zero loss, beside a bare paho subscriber.

Both consumers hold persistent sessions on the same real Mosquitto; a known sequence is queued
for them while they are away, then each drains it in turn. Rate = messages / drain time.
Run: .venv/bin/python -m bench.ingest_throughput [--messages 20000] [--rounds 3] [--devices 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from shared import store
from vesper_sim import broker
from vesper_sim.sequences import implied_state, transitions

ROOT = Path(__file__).resolve().parent.parent
SENTINEL = ("sentinel", {"subsystem": "End", "state": "WARNING", "msg": "end"})


def bare_session(port: int, topic: str, expect: int) -> tuple[mqtt.Client, dict[str, Any]]:
    """A do-nothing QoS 1 subscriber with a persistent session; returns the client and its timings."""
    stats: dict[str, Any] = {"n": 0, "first": 0.0, "last": 0.0, "done": threading.Event()}

    def on_connect(c: mqtt.Client, u: Any, flags: Any, rc: Any, p: Any) -> None:
        if not flags.session_present:
            c.subscribe(topic, qos=1)

    def on_message(c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.perf_counter()
        if stats["n"] == 0:
            stats["first"] = now
        stats["n"] += 1
        stats["last"] = now
        if stats["n"] >= expect:
            stats["done"].set()

    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-bare", clean_session=False)
    client.on_connect = on_connect
    client.on_message = on_message
    return client, stats


def publish_all(port: int, seq: list[tuple[str, dict[str, str]]]) -> float:
    """Publish the sequence at QoS 1 as fast as the broker takes it; returns msg/s."""
    pub = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-pub")
    pub.max_inflight_messages_set(100)
    pub.max_queued_messages_set(0)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    t0 = time.perf_counter()
    infos = [pub.publish(f"vesper/{d}/status/alerts", json.dumps(b), qos=1) for d, b in seq]
    for info in infos:
        info.wait_for_publish(60)
    rate = len(seq) / (time.perf_counter() - t0)
    pub.disconnect()
    pub.loop_stop()
    return rate


def write_config(path: Path, port: int, db: Path, url: str = "") -> None:
    """Config for the ingest under test (on PostgreSQL at `url` when one is given)."""
    database = f'url = "{url}"' if url else f'path = "{db}"'
    path.write_text(
        f'[mqtt]\nport = {port}\nclient_id = "bench-ingest"\n[database]\n{database}\n'
        "[liveness]\nsweep_interval_s = 1.0\n[ingest]\nsummary_interval_s = 600.0\n"
    )


def one_round(n: int, devices: int, seed: int, tmp: Path, url: str = "") -> dict[str, float]:
    """Queue the sequence for both consumers, then drain each and time it (the ingest on PostgreSQL if `url`)."""
    port = broker.free_port()
    mosq = broker.start(tmp / "mosquitto", port)
    env = {**os.environ, "VESPER_CONFIG": str(tmp / "bench.toml"), "PYTHONUNBUFFERED": "1"}
    write_config(tmp / "bench.toml", port, tmp / "vesper.db", url)
    seq = transitions(n, devices, seed) + [SENTINEL]
    try:
        # Create both persistent sessions, then go away so the broker queues for them.
        bare, stats = bare_session(port, "vesper/+/status/alerts", len(seq))
        bare.connect("127.0.0.1", port)
        bare.loop_start()
        time.sleep(0.3)
        bare.disconnect()
        bare.loop_stop()
        log = open(tmp / "ingest.log", "ab")  # noqa: SIM115
        ingest = subprocess.Popen([sys.executable, "-m", "vesper_ingest"], cwd=ROOT, env=env, stdout=log, stderr=log)
        conn = store.open_store(url or tmp / "vesper.db")
        while "connected to" not in (tmp / "ingest.log").read_text():
            time.sleep(0.05)
        ingest.send_signal(signal.SIGTERM)
        ingest.wait(30)

        publish_rate = publish_all(port, seq)

        bare.reconnect()
        bare.loop_start()
        stats["done"].wait(120)
        bare.disconnect()
        bare.loop_stop()
        bare_rate = (stats["n"] - 1) / (stats["last"] - stats["first"])

        ingest = subprocess.Popen([sys.executable, "-m", "vesper_ingest"], cwd=ROOT, env=env, stdout=log, stderr=log)
        if os.environ.get("BENCH_PYSPY"):  # profile the drain: py-spy's collapsed stacks to this file
            spy = ["py-spy", "record", "--format", "raw", "-r", "500", "-d", "2", "-o", os.environ["BENCH_PYSPY"]]
            subprocess.Popen([*spy, "--pid", str(ingest.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while store.device(conn, "sentinel") is None:
            time.sleep(0.005)
        done = time.time()
        first = conn.execute("SELECT MIN(ts) FROM events").fetchone()[0]
        ingest_rate = (len(seq) - 1) / (done - first)
        ingest.send_signal(signal.SIGTERM)
        ingest.wait(30)
        log.close()
        lost = implied_state(seq) != store.all_alerts(conn)
        conn.close()
        return {
            "publish": publish_rate,
            "bare": bare_rate,
            "bare_received": stats["n"],
            "ingest": ingest_rate,
            "lost": float(lost),
        }
    finally:
        mosq.terminate()
        mosq.wait(10)


def main(argv: list[str] | None = None) -> int:
    """Run several rounds and print medians."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    results = []
    for r in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            res = one_round(args.messages, args.devices, seed=r, tmp=Path(tmp))
        results.append(res)
        print(
            f"round {r + 1}: ingest {res['ingest']:,.0f} msg/s, bare paho {res['bare']:,.0f} msg/s, "
            f"received {res['bare_received']:.0f}, state lost: {bool(res['lost'])}",
            flush=True,
        )
    med = {k: statistics.median(r[k] for r in results) for k in ("ingest", "bare", "publish")}
    print(f"\ncores: {os.cpu_count()}  messages/round: {args.messages:,} QoS 1 transitions, {args.devices} devices")
    print(f"{'':28}{'median msg/s':>14}")
    print(f"{'ingest (ack after commit)':28}{med['ingest']:>14,.0f}")
    print(f"{'bare paho subscriber':28}{med['bare']:>14,.0f}")
    print(f"{'ratio ingest / bare':28}{med['ingest'] / med['bare']:>14.2f}")
    print(f"{'publisher (for reference)':28}{med['publish']:>14,.0f}")
    print(f"no loss in every round: {not any(r['lost'] for r in results)}")
    return 1 if any(r["lost"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
