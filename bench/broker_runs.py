"""The processes bench/brokers.py runs: the brokers it compares (Mosquitto, NATS and RabbitMQ from Debian's
packages, each on free loopback ports with its data in a temporary directory, killable with SIGKILL) and the
ingest-like consumer (`python -m bench.broker_runs FILE PORT...`, a line in FILE per processed message).

Nothing here touches port 1883, a system service or /etc: RabbitMQ runs in the foreground with RABBITMQ_*
variables, its own Erlang cookie (HOME) and its own epmd port.
"""

from __future__ import annotations

import contextlib
import glob
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from shared.config import MqttConfig
from shared.mqtt import make_client
from vesper_sim import broker

RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")  # the scripts themselves: /usr/sbin's wrappers switch to another user
RABBIT_MQTT_PLUGIN = "/usr/lib/rabbitmq/lib/*/plugins/rabbitmq_mqtt-*"
ROOT = Path(__file__).resolve().parent.parent
FILTER = "vesper/+/status/alerts"
CLIENT_ID = "bench-brokers-ingest"
ACK_LAG_S = 0.01  # the consumer processes (and acks) each message this long after it arrived
NATS_MQTT = {"ack_wait": '"30s"', "max_ack_pending": "1024"}  # NATS 2.9's defaults, written out
RABBIT_MQTT = {"mqtt.prefetch": "1000", "mqtt.allow_anonymous": "true"}  # prefetch 1000 = Mosquitto's inflight


@dataclass
class Node:
    """One broker process: started in a process group of its own, so SIGKILL takes all of it at once."""

    name: str
    port: int  # its MQTT listener
    argv: list[str]
    log: Path
    env: dict[str, str] | None = None
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process (again, after a kill: same config and data directory)."""
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.env, start_new_session=True,
            )  # fmt: skip

    def signal(self, sig: int, timeout: float = 30.0) -> None:
        """Send `sig` to the whole process group and wait until every process in it is gone."""
        if self.proc is None:
            return
        pgid, deadline = self.proc.pid, time.monotonic() + timeout
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        self.proc.wait(timeout)
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: the broker gets no chance to save or close anything."""
        self.signal(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL for whatever has not left after 20 s."""
        try:
            self.signal(signal.SIGTERM, 20.0)
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass
class Broker:
    """A broker of one or more nodes, its version and the settings that matter here."""

    label: str
    version: str
    settings: str
    waves: list[list[Node]]  # started in this order, each wave's nodes together
    settle_s: float  # how long to wait for redeliveries before counting what never came
    epmd_port: int = 0

    @property
    def nodes(self) -> list[Node]:
        """Every node, in start order."""
        return [n for wave in self.waves for n in wave]

    def start(self, timeout: float = 90.0) -> None:
        """Start every node, wave by wave, and wait until each takes an MQTT subscription."""
        for wave in self.waves:
            for node in wave:
                node.start()
            for node in wave:
                wait_ready(node, timeout)

    def close(self) -> None:
        """Stop every node (and the epmd that RabbitMQ started on its private port)."""
        with ThreadPoolExecutor() as pool:
            list(pool.map(Node.stop, self.nodes))
        if self.epmd_port and shutil.which("epmd"):
            subprocess.run(["epmd", "-port", str(self.epmd_port), "-kill"], capture_output=True, timeout=10)


def mqtt_ready(port: int) -> bool:
    """True if a clean-session client can connect to loopback:port and get a QoS 1 subscription granted."""
    granted = threading.Event()
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"bench-probe-{port}")
    client.on_connect = lambda c, u, f, rc, p: rc.is_failure or c.subscribe("vesper/probe", qos=1)
    client.on_subscribe = lambda c, u, mid, codes, p: all(not r.is_failure for r in codes) and granted.set()
    try:
        client.connect("127.0.0.1", port)
        client.loop_start()
        return granted.wait(2.0)
    except OSError:
        return False
    finally:
        client.disconnect()
        client.loop_stop()


def wait_ready(node: Node, timeout: float) -> None:
    """Wait until `node` serves MQTT; raise (with its log's tail) if it died or took longer than `timeout`."""
    deadline = time.monotonic() + timeout
    while not (broker.listening("127.0.0.1", node.port) and mqtt_ready(node.port)):
        if node.proc is None or node.proc.poll() is not None or time.monotonic() > deadline:
            tail = node.log.read_text(errors="replace")[-1500:] if node.log.exists() else ""
            raise RuntimeError(f"{node.name} did not serve MQTT on port {node.port}:\n{tail}")
        time.sleep(0.2)


def package_version(package: str) -> str:
    """The installed Debian package's version, or '?' where dpkg does not know it."""
    if not shutil.which("dpkg-query"):
        return "?"
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True)
    return out.stdout.strip() or "?"


def available() -> dict[str, bool]:
    """Which brokers' binaries this machine has."""
    return {
        "mosquitto": bool(shutil.which("mosquitto")) or Path("/usr/sbin/mosquitto").exists(),
        "nats": bool(shutil.which("nats-server")),
        "rabbitmq": (RABBIT_BIN / "rabbitmq-server").exists() and bool(glob.glob(RABBIT_MQTT_PLUGIN)),
    }


def mosquitto(tmp: Path, autosave_s: int = 1) -> Broker:
    """Mosquitto with the project's settings (vesper_sim/mosquitto.conf), autosave every `autosave_s` seconds."""
    port, directory = broker.free_port(), tmp / f"mosquitto-{autosave_s}"
    conf = broker.write_config(directory, port)
    text = conf.read_text().replace("autosave_interval 1\n", f"autosave_interval {autosave_s}\n")
    conf.write_text(text.replace("max_queued_messages 1000000", "max_queued_messages 0"))
    keys, lines = ("persistence ", "autosave", "max_inflight", "max_queued"), conf.read_text().splitlines()
    settings = "; ".join(line for line in lines if line.startswith(keys))
    node = Node("mosquitto", port, [broker.mosquitto_binary(), "-c", str(conf)], directory / "mosquitto.log")
    return Broker(f"mosquitto (autosave {autosave_s} s)", package_version("mosquitto"), settings, [[node]], 8.0)


def nats(tmp: Path, size: int = 1) -> Broker:
    """NATS with JetStream on disk and its MQTT listener; `size` > 1: a cluster, MQTT streams on every node."""
    ports = [(broker.free_port(), broker.free_port(), broker.free_port()) for _ in range(size)]
    routes = ", ".join(f"nats-route://127.0.0.1:{route}" for _, route, _ in ports)
    mqtt_opts = dict(NATS_MQTT, stream_replicas=str(size), consumer_replicas=str(size))
    mqtt_text = ", ".join(f"{k}: {v}" for k, v in mqtt_opts.items())
    nodes = []
    for i, (client, route, mqtt_port) in enumerate(ports):
        (directory := tmp / f"nats{size}-{i}").mkdir(parents=True)
        text = f'server_name: n{i}\nlisten: 127.0.0.1:{client}\njetstream {{ store_dir: "{directory}/js" }}\n'
        text += f"mqtt {{ listen: 127.0.0.1:{mqtt_port}, {mqtt_text} }}\n"
        if size > 1:
            text += f"cluster {{ name: vesper, listen: 127.0.0.1:{route}, routes: [{routes}] }}\n"
        (directory / "nats.conf").write_text(text)
        argv = [shutil.which("nats-server") or "nats-server", "-c", str(directory / "nats.conf")]
        nodes.append(Node(f"nats n{i}", mqtt_port, argv, directory / "nats.log"))
    settings = f"jetstream file store; mqtt {{ {mqtt_text} }}" + (f"; cluster of {size}" if size > 1 else "")
    return Broker(f"nats ({size} node{'s' * (size > 1)})", package_version("nats-server"), settings, [nodes], 45.0)


def rabbit_env(tmp: Path, directory: Path, name: str, epmd: int) -> dict[str, str]:
    """The RABBITMQ_* variables of one foreground node whose files are all under `directory`."""
    ctl = str(broker.free_port())  # rabbitmqctl's own distribution port
    return dict(
        os.environ, HOME=str(tmp), RABBITMQ_CONFIG_FILE=str(directory / "rabbit.conf"),
        RABBITMQ_ENABLED_PLUGINS_FILE=str(tmp / "enabled_plugins"), RABBITMQ_MNESIA_BASE=str(directory / "mnesia"),
        RABBITMQ_LOG_BASE=str(directory / "log"), RABBITMQ_NODENAME=name, RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
        RABBITMQ_NODE_PORT=str(broker.free_port()), RABBITMQ_DIST_PORT=str(broker.free_port()),
        RABBITMQ_CTL_DIST_PORT_MIN=ctl, RABBITMQ_CTL_DIST_PORT_MAX=ctl,
        ERL_EPMD_PORT=str(epmd), ERL_EPMD_ADDRESS="127.0.0.1",
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
    )  # fmt: skip


def rabbitmq(tmp: Path, size: int = 1) -> Broker:
    """RabbitMQ's MQTT plugin; `size` > 1: a cluster (the first node, then the others join it by classic
    peer discovery) whose MQTT session queues are quorum queues."""
    epmd, queue_type = broker.free_port(), "quorum" if size > 1 else "classic"
    (tmp / "enabled_plugins").write_text("[rabbitmq_mqtt].\n")
    conf = dict(RABBIT_MQTT, **{"mqtt.durable_queue_type": queue_type})
    nodes = []
    for i in range(size):
        (directory := tmp / f"rabbit{size}-{i}").mkdir(parents=True)
        port = broker.free_port()
        text = f"mqtt.listeners.tcp.default = 127.0.0.1:{port}\n" + "".join(f"{k} = {v}\n" for k, v in conf.items())
        if i > 0:
            text += "cluster_formation.peer_discovery_backend = classic_config\n"
            text += "cluster_formation.classic_config.nodes.1 = vesper0@localhost\n"
        (directory / "rabbit.conf").write_text(text)
        env = rabbit_env(tmp, directory, f"vesper{i}@localhost", epmd)
        nodes.append(Node(f"rabbit{i}", port, [str(RABBIT_BIN / "rabbitmq-server")], directory / "out.log", env))
    settings = "; ".join(f"{k} = {v}" for k, v in conf.items()) + "; the plugin publishes QoS 1 as persistent messages"
    label = f"rabbitmq ({size} node{'s' * (size > 1)}, {queue_type})"
    waves = [nodes[:1], nodes[1:]] if size > 1 else [nodes]
    return Broker(label, package_version("rabbitmq-server"), settings, waves, 20.0, epmd_port=epmd)


def consume(ports: list[int], out: Path) -> None:
    """The consumer process: the ingest's client (shared.mqtt.make_client), a line per processed message."""
    log = out.open("a", buffering=1)  # line-buffered: a line written is in the kernel before its ack is sent
    log.write(f"S {time.time()}\n")
    inbox: queue.SimpleQueue[tuple[int, mqtt.MQTTMessage, float]] = queue.SimpleQueue()
    state = {"generation": 0, "node": 0}
    client = make_client(MqttConfig(port=ports[0]), CLIENT_ID, persistent=True, manual_ack=True)

    def on_connect(c: mqtt.Client, u: Any, flags: Any, rc: Any, p: Any) -> None:
        state["generation"] += 1
        log.write(f"C {time.time()} {int(flags.session_present)} {state['generation']}\n")
        c.subscribe(FILTER, qos=1)

    def next_node(c: mqtt.Client, *args: Any) -> None:
        state["node"] += 1  # connection lost or refused: in a cluster, try the next node (replaces the log line)
        c._port = ports[state["node"] % len(ports)]  # the `port` setter refuses while paho is reconnecting

    client.on_connect, client.on_disconnect, client.on_connect_fail = on_connect, next_node, next_node
    client.on_message = lambda c, u, msg: inbox.put((state["generation"], msg, time.time()))
    client.connect_async("127.0.0.1", ports[0])
    client.loop_start()
    while True:
        generation, msg, arrived = inbox.get()
        time.sleep(max(0.0, arrived + ACK_LAG_S - time.time()))
        log.write(f"M {arrived} {msg.topic.split('/')[1]} {int(msg.payload)} {int(msg.dup)} {generation}\n")
        if generation == state["generation"]:
            client.ack(msg.mid, msg.qos)


class Consumer:
    """The consumer process seen from the bench: start, SIGKILL, and what it wrote: S (start), C (connected:
    time, session present, connection number) and M lines (arrival time, device, sequence number, DUP flag,
    connection number), in the order processed, which is the order received."""

    def __init__(self, ports: list[int], out: Path) -> None:
        """A consumer of `ports` (tried in turn) writing to `out`; not started yet."""
        self.ports, self.out = ports, out
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process (the same client id every time)."""
        argv = [sys.executable, "-m", "bench.broker_runs", str(self.out), *map(str, self.ports)]
        self.proc = subprocess.Popen(argv, cwd=ROOT)

    def kill(self) -> None:
        """SIGKILL: its socket closes without DISCONNECT, its unacked messages stay with the broker."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()

    def lines(self) -> list[list[str]]:
        """Every line written so far, split."""
        return [line.split() for line in self.out.read_text().splitlines()] if self.out.exists() else []

    def processed(self) -> set[tuple[str, int]]:
        """(device, sequence number) of every message processed so far."""
        return {(w[2], int(w[3])) for w in self.lines() if w[0] == "M" and len(w) == 6}


if __name__ == "__main__":
    consume([int(p) for p in sys.argv[2:]], Path(sys.argv[1]))
