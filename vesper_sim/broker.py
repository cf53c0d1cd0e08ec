"""Start a local Mosquitto with settings that keep QoS 1 queues (for `make run`, tests, benches)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from shared.config import MqttConfig
from shared.mqtt import make_client

TEMPLATE = Path(__file__).with_name("mosquitto.conf")
PROBE_TIMEOUT_S = 3.0


def free_port() -> int:
    """An unused TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(host: str, port: int, timeout: float = 0.2) -> bool:
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def answers_mqtt(cfg: MqttConfig, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True if host:port answers an MQTT CONNECT (with cfg's credentials and TLS) with a CONNACK within timeout."""
    answered: list[bool] = []
    client = make_client(cfg, f"vesper-probe-{os.getpid()}")
    client.connect_timeout = timeout
    # Any CONNACK, even a refusal of our credentials, shows a broker is there.
    client.on_connect = lambda *_: answered.append(True)
    deadline = time.monotonic() + timeout
    try:
        client.connect(cfg.host, cfg.port, keepalive=max(int(timeout) + 1, 5))
        while not answered and time.monotonic() < deadline:
            if client.loop(timeout=0.1) != mqtt.MQTT_ERR_SUCCESS:
                break  # the peer closed or sent what MQTT is not
    except (OSError, ValueError):  # refused, reset, a TLS handshake with a plain TCP peer
        return False
    finally:
        client.disconnect()
    return bool(answered)


def write_config(directory: Path, port: int, extra: str = "") -> Path:
    """A mosquitto.conf for a loopback listener with persistence in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    text = TEMPLATE.read_text().replace("listener 1883 127.0.0.1", f"listener {port} 127.0.0.1")
    text = text.replace("/var/lib/mosquitto/", f"{directory.resolve()}/")
    # As root, mosquitto drops to the `mosquitto` user and then cannot write our directory:
    # persistence would silently be off.
    if os.geteuid() == 0:
        text += "\nuser root\n"
    conf = directory / "mosquitto.conf"
    conf.write_text(text + "\n" + extra)
    return conf


def mosquitto_binary() -> str:
    """Path of the mosquitto daemon."""
    path = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(path).exists():
        raise FileNotFoundError("mosquitto is not installed (apt-get install mosquitto)")
    return path


def start(directory: Path, port: int, extra: str = "", log_path: Path | None = None) -> subprocess.Popen[bytes]:
    """Start mosquitto on loopback:port and wait until it accepts connections."""
    conf = write_config(directory, port, extra)
    log_path = log_path or directory / "mosquitto.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([mosquitto_binary(), "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while not listening("127.0.0.1", port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"mosquitto did not start on port {port}; see {log_path}")
        time.sleep(0.02)
    return proc
