"""Two yardsticks for the stream fan-out: a minimal gevent SSE server (the Python floor) and Mosquitto (the C limit).

The floor subscribes to the published topic, frames each event once and writes every round's
frames to every client with one writer greenlet, at most one round per spacing (the real worker's
rule, vesper_web/ring.py: twice a measured round); nothing else. Mosquitto fans the same events out to as many raw MQTT
subscribers (bench/mqtt_subscribers.py). Both are fed by the same device publisher, broker and
ingest as bench/stream_fanout.py, and `yard_step` measures one step as its `one_rate` does.
Run: .venv/bin/python -m bench.fanout_floor [--clients 100] [--rate 50] [--seconds 3]
     .venv/bin/python -m bench.fanout_floor serve --port P --mqtt-port M [--backlog N]   (the floor itself)
"""

from __future__ import annotations

import sys

if __name__ == "__main__" and sys.argv[1:2] == ["serve"]:
    import gevent.monkey  # first: before anything imports socket, ssl or threading

    gevent.monkey.patch_all()

import argparse
import multiprocessing
import signal
import socket
import subprocess
import tempfile
import time
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import gevent
import gevent.event
import paho.mqtt.client as mqtt
from gevent import monkey
from gevent.server import StreamServer
from paho.mqtt.enums import CallbackAPIVersion

from bench import stream_fanout
from bench.common import Stack, cpu_seconds
from bench.sse_load import SseLoad, raise_nofile
from shared.events import dumps, parse_published
from shared.topics import Topics
from vesper_sim.broker import free_port
from vesper_web import sse
from vesper_web.ring import MAX_SPACING_S, ROUND_FACTOR, ROUND_WEIGHT, SPACING_PER_CLIENT_S

HEADER = b"HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
MAX_HEAD = 65536


class Floor:
    """Registered client sockets, the frames waiting for the next round, and the one writer."""

    def __init__(self) -> None:
        self.clients: dict[socket.socket, None] = {}
        self.pending: list[bytes] = []
        self.ready = gevent.event.Event()
        self.round_s = 0.0  # what a round of writes takes, measured as the worker's rings measure theirs

    def on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        """Frame every event of a published message once; the writer sends them."""
        try:
            events = parse_published(message.payload)
        except ValueError:
            return
        self.pending.append(b"".join(sse.event(e["id"], dumps(e)) for e in events))
        self.ready.set()

    def handle(self, sock: socket.socket, address: Any) -> None:
        """Read the request head, answer with the stream's head, register the client until it hangs up."""
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk or len(head) > MAX_HEAD:
                return
            head += chunk
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(HEADER + sse.connected())
        self.clients[sock] = None
        try:
            while sock.recv(4096):  # gevent closes the socket when this returns: hold it until the client hangs up
                pass
        except OSError:
            pass
        finally:
            self.clients.pop(sock, None)

    def spacing(self) -> float:
        """The least time between two rounds' starts: ring.py's rule (twice a measured round, within its bounds)."""
        return min(MAX_SPACING_S, max(len(self.clients) * SPACING_PER_CLIENT_S, ROUND_FACTOR * self.round_s))

    def write(self) -> None:
        """The writer greenlet: all pending frames as one bytes to every client, then wait out the spacing."""
        while True:
            self.ready.wait()
            self.ready.clear()
            started = time.monotonic()
            data, self.pending = b"".join(self.pending), []
            for sock in list(self.clients):
                try:
                    sock.sendall(data)
                except OSError:
                    self.clients.pop(sock, None)
            took = min(MAX_SPACING_S, time.monotonic() - started)
            self.round_s += ROUND_WEIGHT * (took - self.round_s)
            gevent.sleep(max(0.0, self.spacing() - took))


def subscribe(floor: Floor, mqtt_port: int, client_id: str) -> mqtt.Client:
    """Subscribe the floor to the published topic at QoS 1 (again on each reconnect); prints when the broker agreed."""
    topic = Topics().published

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if not reason.is_failure:
            client.subscribe(topic, qos=1)

    def on_subscribe(client: mqtt.Client, userdata: Any, mid: int, reasons: list[Any], props: Any) -> None:
        print("floor: subscribe refused" if reasons[0].is_failure else "floor: subscribed", flush=True)

    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id)
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = floor.on_message
    client.connect("127.0.0.1", mqtt_port)
    client.loop_start()
    return client


def serve(port: int, mqtt_port: int, backlog: int) -> None:
    """Run the floor server until SIGTERM (in a process whose first import monkey patched everything)."""
    if not monkey.is_module_patched("socket"):
        raise RuntimeError("the floor server needs gevent's monkey patching: run `python -m bench.fanout_floor serve`")
    floor = Floor()
    server = StreamServer(("127.0.0.1", port), floor.handle, backlog=backlog)
    server.start()
    print(f"floor: listening on 127.0.0.1:{port}", flush=True)
    client = subscribe(floor, mqtt_port, f"bench-floor-{port}")
    writer = gevent.spawn(floor.write)
    done = gevent.event.Event()
    gevent.signal_handler(signal.SIGTERM, done.set)
    done.wait()
    writer.kill()
    client.disconnect()
    client.loop_stop()
    server.stop(timeout=1)


def floor_server(stack: Stack, n: int, port: int | None = None) -> subprocess.Popen[bytes]:
    """Start the floor server (on `port`, else a free one) against the stack's broker; wait until it is subscribed."""
    port = port or free_port()
    args = ["--port", str(port), "--mqtt-port", str(stack.port), "--backlog", str(max(128, n))]
    name = f"floor-{port}"  # a log of its own: an earlier floor's "subscribed" must not count
    proc = stack.start(name, [sys.executable, "-m", "bench.fanout_floor", "serve", *args])
    stack.wait_log(name, "floor: subscribed")
    return proc


def process_cpu(procs: list[BaseProcess]) -> list[float]:
    """CPU seconds each of these processes has used (each one's share of the load's CPU)."""
    return [cpu_seconds(p.pid) for p in procs if p.pid is not None]


def yard_step(server_pid: int, load: SseLoad, broker_port: int, n: int, rate: float, seconds: float) -> dict[str, Any]:
    """Publish rate*seconds alerts to the n clients of `load` (SseLoad or MqttLoad); what they got, and the cost.

    `server_pid` is the fanning-out process: the floor server, or for MqttLoad the broker, which also
    serves the ingest (the alerts in, the events out and back), so its CPU is more than the fan-out's.
    """
    count = max(1, int(rate * seconds))
    load.reset()
    cpu0, wall0, load0 = cpu_seconds(server_pid), time.monotonic(), process_cpu(load.procs)
    sender = multiprocessing.get_context("spawn").Process(
        target=stream_fanout.publisher, args=(broker_port, rate, count)
    )
    sender.start()
    sender.join()
    if sender.exitcode:
        raise RuntimeError(f"the publisher failed (exit code {sender.exitcode})")
    stream_fanout.await_delivery(load, count)
    cpu, wall = cpu_seconds(server_pid) - cpu0, time.monotonic() - wall0
    shares = [b - a for a, b in zip(load0, process_cpu(load.procs), strict=True)]
    step = stream_fanout.step_result(n, rate, count, load.collect(), cpu, wall, shares)
    step["server_cpu"] = 100 * cpu / wall
    return step


def print_yard(name: str, s: dict[str, Any]) -> None:
    """One yardstick's step as a line."""
    print(
        f"{name:<10} {s['clients']:>6} clients {s['rate']:>7.1f} ev/s: received {s['received']:>9,}/{s['expected']:,}"
        f" complete {s['complete']!s:<5} p50 {s['p50_ms']:>6.1f} ms p99 {s['p99_ms']:>6.1f} ms"
        f" server CPU {s['server_cpu']:>4.0f}% {s['us_per_delivery']:>5.2f} us/delivery"
        f" load CPU {s['load_cpu']:>4.0f}% (busiest {s['load_cpu_max']:.0f}%) {'held' if s['held'] else 'NOT held'}",
        flush=True,
    )


def demo(n: int, rate: float, seconds: float) -> None:
    """One step against the floor, then one against Mosquitto, on one broker and ingest."""
    from bench.fanout_yards import yardsticks  # it imports this module

    with tempfile.TemporaryDirectory(prefix="vesper-floor-") as tmp:
        stack = Stack(Path(tmp), liveness={"heartbeat_timeout_s": 3600.0})
        try:
            stack.ingest()
            for name, step in yardsticks(stack, n, rate, seconds).items():
                print_yard(name, step)
        finally:
            stack.close()


def main(argv: list[str] | None = None) -> int:
    """Serve the floor (`serve`), or run the demo: one step against each yardstick."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--rate", type=float, default=50.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=3.0)
    commands = parser.add_subparsers(dest="command")
    server = commands.add_parser("serve", help="run the floor server")
    server.add_argument("--port", type=int, required=True)
    server.add_argument("--mqtt-port", type=int, required=True)
    server.add_argument("--backlog", type=int, default=128, help="listen backlog (about the client count)")
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.port, args.mqtt_port, args.backlog)
        return 0
    hard = raise_nofile()
    if args.clients + 200 > hard:
        print(f"RLIMIT_NOFILE hard limit {hard} is too low for {args.clients} clients", file=sys.stderr)
        return 2
    demo(args.clients, args.rate, args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
