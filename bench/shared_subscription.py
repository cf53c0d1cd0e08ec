"""Shared subscriptions: how fast 1..k bare paho subscribers on `$share/...` take one stream, and what
happens to per-device order.

k processes each subscribe (QoS 1) to `$share/bench/vesper/+/status/alerts`; a raw publisher sends a
known sequence over many devices faster than one subscriber can take it. Prints the combined
receive rate and how many devices had their messages split over several subscribers: for those,
which of two messages is applied first depends on timing, so an ingest per subscriber could apply
a device's CLEARED before its WARNING.
Run: .venv/bin/python -m bench.shared_subscription [--messages 50000] [--devices 1000] [--consumers 1 2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.mqtt_load import RawPublisher
from vesper_sim import broker

FILTER = "$share/bench/vesper/+/status/alerts"


def consumer(port: int, index: int, expect_total: int, pipe: Connection) -> None:
    """A do-nothing QoS 1 member of the shared subscription; reports (first, last, devices seen)."""
    seen: set[str] = set()
    stats: dict[str, Any] = {"n": 0, "first": 0.0, "last": 0.0}

    def on_connect(c: mqtt.Client, u: Any, flags: Any, rc: Any, p: Any) -> None:
        c.subscribe(FILTER, qos=1)

    def on_subscribe(c: mqtt.Client, u: Any, mid: int, rc: Any, p: Any) -> None:
        pipe.send("subscribed")

    def on_message(c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.perf_counter()
        if stats["n"] == 0:
            stats["first"] = now
        stats["n"] += 1
        stats["last"] = now
        seen.add(msg.topic.split("/")[1])

    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"bench-share-{index}")
    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    client.connect("127.0.0.1", port)
    client.loop_start()
    pipe.recv()  # the publisher is done: wait until nothing more arrives
    idle_since, last_n = time.monotonic(), -1
    while time.monotonic() - idle_since < 1.0:
        if stats["n"] != last_n:
            idle_since, last_n = time.monotonic(), stats["n"]
        time.sleep(0.05)
    client.disconnect()
    client.loop_stop()
    pipe.send((stats["n"], time.perf_counter() - stats["first"], stats["last"] - stats["first"], sorted(seen)))


def one_round(consumers: int, messages: int, devices: int, tmp: Path) -> dict[str, Any]:
    """One broker, `consumers` member processes, one burst."""
    port = broker.free_port()
    mosq = broker.start(tmp / "mosquitto", port)
    ctx = multiprocessing.get_context("spawn")
    pipes, procs = [], []
    try:
        for i in range(consumers):
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(target=consumer, args=(port, i, messages, theirs))
            proc.start()
            pipes.append(mine)
            procs.append(proc)
        for pipe in pipes:
            if not pipe.poll(30) or pipe.recv() != "subscribed":
                raise RuntimeError("a subscriber did not subscribe")
        pub = RawPublisher(port, "bench-share-pub")
        batch = []
        rng = random.Random(1)  # devices in random order: round-robin delivery must not line up with them
        for n in range(messages):
            topic = f"vesper/dev-{rng.randrange(devices):05d}/status/alerts".encode()
            batch.append(pub.packet(topic, b'{"subsystem":"A","state":"WARNING","msg":"m%d"}' % n))
            if len(batch) == 500:
                pub.send(batch)
                pub.read_acks()
                batch = []
        pub.send(batch)
        pub.drain()
        pub.close()
        for pipe in pipes:
            pipe.send("done")
        results = [pipe.recv() for pipe in pipes]
    finally:
        for proc in procs:
            proc.join(30)
        mosq.terminate()
        mosq.wait(10)
    received = sum(r[0] for r in results)
    span = max(r[2] for r in results)  # from each one's first to its last message: they overlap
    owners: dict[str, int] = {}
    for r in results:
        for device in r[3]:
            owners[device] = owners.get(device, 0) + 1
    return {
        "consumers": consumers,
        "received": received,
        "rate": received / span if span else float("nan"),
        "split_devices": sum(1 for n in owners.values() if n > 1),
        "devices": len(owners),
    }


def main(argv: list[str] | None = None) -> int:
    """Medians over rounds, per number of consumers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--consumers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"{args.messages:,} QoS 1 messages over {args.devices:,} devices, medians of {args.rounds} rounds")
    for k in args.consumers:
        runs = []
        for _ in range(args.rounds):
            with tempfile.TemporaryDirectory(prefix="vesper-share-") as tmp:
                runs.append(one_round(k, args.messages, args.devices, Path(tmp)))
        rate = statistics.median(r["rate"] for r in runs)
        split = statistics.median(r["split_devices"] for r in runs)
        print(
            f"{k} subscriber(s): {rate:,.0f} msg/s combined, {min(r['received'] for r in runs):,} received at least;"
            f" devices whose messages went to more than one subscriber: {split:,.0f} of {runs[0]['devices']:,}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
