"""A bare paho subscriber in its own process: the yardstick for what the ingest and the web add to MQTT.

It subscribes at QoS 1 (as the ingest does), finds the send time each bench message carries with one
regular expression, and keeps every latency (receipt - send time) per subscription, and its count. The
parent drives it over a pipe (reset, collect, close) and reads its CPU from /proc.
"""

from __future__ import annotations

import multiprocessing
import re
import time
from array import array
from multiprocessing.connection import Connection
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.common import cpu_seconds

ALERT_TIME = rb"bench \d+ (\d+\.\d+)"  # stream_fanout.publisher's msg, also inside the published event
HEARTBEAT_TIME = rb'"t":(\d+\.\d+)'  # mqtt_load.HeartbeatFleet's payload


class _Bare:
    """The subscriber process's client and its latencies, one array per topic filter."""

    def __init__(self, port: int, topics: list[str], pattern: bytes) -> None:
        self.times = re.compile(pattern)
        self.topics = topics
        self.lat = [array("d") for _ in topics]
        self.acked = False
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"bench-bare-{port}")
        self.client.on_connect = lambda c, u, flags, rc, p: c.subscribe([(t, 1) for t in topics])
        self.client.on_subscribe = self.on_subscribe
        for i, topic in enumerate(topics):
            self.client.message_callback_add(topic, self.handler(i))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def on_subscribe(self, c: mqtt.Client, u: Any, mid: int, codes: Any, p: Any) -> None:
        self.acked = True

    def handler(self, i: int) -> Any:
        """on_message for the i-th filter."""

        def on_message(c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
            now = time.time()
            self.lat[i].extend(now - float(t) for t in self.times.findall(msg.payload))

        return on_message


def _serve(pipe: Connection, port: int, topics: list[str], pattern: bytes) -> None:
    """The subscriber process: answer once subscribed, then obey the parent."""
    bare = _Bare(port, topics, pattern)
    deadline = time.monotonic() + 30
    while not bare.acked and time.monotonic() < deadline:
        time.sleep(0.01)
    pipe.send(("ok", bare.acked))
    while True:
        command = pipe.recv()
        if command == "reset":
            bare.lat = [array("d") for _ in topics]
            pipe.send(("ok", None))
        elif command == "collect":
            pipe.send(("ok", [a.tobytes() for a in bare.lat]))
        elif command == "close":
            bare.client.disconnect()
            bare.client.loop_stop()
            pipe.send(("ok", None))
            return


class BareSubscriber:
    """One do-nothing subscriber of `topics` on the broker at `port`."""

    def __init__(self, port: int, topics: list[str], pattern: bytes = ALERT_TIME) -> None:
        self.topics = topics
        mine, theirs = multiprocessing.Pipe()
        self.pipe = mine
        ctx = multiprocessing.get_context("spawn")
        self.proc = ctx.Process(target=_serve, args=(theirs, port, topics, pattern), daemon=True)
        self.proc.start()
        if not self._ask(None):
            raise RuntimeError("the bare subscriber's SUBACK never came")

    def _ask(self, command: str | None) -> Any:
        if command is not None:
            self.pipe.send(command)
        if not self.pipe.poll(60):
            raise RuntimeError(f"the bare subscriber did not answer {command!r}")
        return self.pipe.recv()[1]

    def reset(self) -> None:
        """Forget what was received so far."""
        self._ask("reset")

    def latencies(self) -> list[list[float]]:
        """Every latency since the last reset, seconds, one list per topic filter."""
        out = []
        for raw in self._ask("collect"):
            values = array("d")
            values.frombytes(raw)
            out.append(list(values))
        return out

    def cpu(self) -> float:
        """CPU seconds the subscriber process has used."""
        return cpu_seconds(self.proc.pid or 0)

    def close(self) -> None:
        """Disconnect and end the process."""
        try:
            self._ask("close")
        finally:
            self.proc.join(10)
            if self.proc.is_alive():
                self.proc.kill()
