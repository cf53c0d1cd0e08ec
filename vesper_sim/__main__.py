"""`python -m vesper_sim`: run a simulated fleet against the configured broker."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt

from shared.config import load
from shared.mqtt import make_client
from vesper_sim.fleet import Fleet

log = logging.getLogger("vesper_sim")


def main(argv: list[str] | None = None) -> int:
    """Publish the fleet's traffic until interrupted (or for --duration seconds)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=12)
    parser.add_argument("--speed", type=float, default=1.0, help="time scale: 10 means ten times as often")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--duration", type=float, default=0.0, help="seconds; 0 runs until interrupted")
    parser.add_argument("--no-silence", action="store_true", help="no device ever goes silent")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout)

    cfg = load()
    fleet = Fleet(args.devices, args.speed, args.seed, cfg.mqtt.topic_prefix, silent=not args.no_silence)
    lock = threading.Lock()
    commands: list[str] = []
    stop = threading.Event()

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if not reason.is_failure:
            client.subscribe(f"{cfg.mqtt.topic_prefix}/+/control", qos=1)

    def on_message(client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            if json.loads(msg.payload).get("cmd") == "system.health":
                with lock:
                    commands.append(msg.topic.split("/")[1])
        except (ValueError, AttributeError):
            pass

    client = make_client(cfg.mqtt, f"vesper-sim-{args.seed}")
    client.on_connect = on_connect
    client.on_message = on_message
    client.max_queued_messages_set(100_000)
    client.connect_async(cfg.mqtt.host, cfg.mqtt.port)
    client.loop_start()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    log.info(
        "simulating %d devices at speed %.1f against %s:%d", args.devices, args.speed, cfg.mqtt.host, cfg.mqtt.port
    )

    start = time.monotonic()
    while not stop.is_set():
        now = time.monotonic() - start
        if args.duration and now >= args.duration:
            break
        with lock:
            pending, commands[:] = list(commands), []
        out = fleet.due(now)
        for device_id in pending:
            out += fleet.health_check(device_id)
        for msg in out:
            client.publish(msg.topic, msg.payload, qos=msg.qos, retain=msg.retain)
        stop.wait(max(0.0, min(fleet.next_due() - (time.monotonic() - start), 0.2)))
    client.disconnect()
    client.loop_stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
