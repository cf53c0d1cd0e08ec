"""(d)'s yardsticks at one step: the same events to as many clients from the Python floor and from Mosquitto."""

from __future__ import annotations

from typing import Any

from bench.common import Stack
from bench.fanout_floor import floor_server, yard_step
from bench.mqtt_subscribers import MqttLoad
from bench.sse_load import SseLoad
from vesper_sim.broker import free_port


def yardsticks(stack: Stack, n: int, rate: float, seconds: float) -> dict[str, dict[str, Any]]:
    """One step at `rate` events/s to n clients of the floor server, then to n MQTT subscribers of Mosquitto."""
    port = free_port()
    floor = floor_server(stack, n, port)
    load = SseLoad("127.0.0.1", port)
    try:
        load.connect(n)
        out = {"floor": yard_step(floor.pid, load, stack.port, n, rate, seconds)}
    finally:
        load.close()
        floor.terminate()  # its subscription would cost the broker one more delivery per message
        floor.wait(15)
    mqtt = MqttLoad(stack.port)
    try:
        mqtt.connect(n)
        out["mosquitto"] = yard_step(stack.broker.pid, mqtt, stack.port, n, rate, seconds)
    finally:
        mqtt.close()
    return out
