"""`make run`: a local broker if none listens, every Procfile process, and a demo fleet."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from shared.config import ConfigError, load
from vesper_sim import broker

ROOT = Path(__file__).resolve().parent.parent
DEMO_DEVICES = 12
DEMO_SPEED = 3.0


def procfile(path: Path) -> dict[str, str]:
    """The `name: command` lines of a Procfile."""
    entries = {}
    for line in path.read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not name.startswith("#"):
            entries[name.strip()] = command.strip()
    return entries


def wait_http(url: str, timeout: float) -> bool:
    """True once url answers at all."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def main() -> int:
    """Start everything, print the console's address, stop everything on Ctrl-C."""
    try:
        cfg = load()
    except ConfigError as exc:
        print(f"vesper: {exc}", file=sys.stderr)
        return 2
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}", "PYTHONUNBUFFERED": "1"}
    children: list[subprocess.Popen[bytes]] = []
    if broker.listening(cfg.mqtt.host, cfg.mqtt.port):
        print(f"vesper: using the MQTT broker already listening on {cfg.mqtt.host}:{cfg.mqtt.port}")
    else:
        print(f"vesper: starting a local mosquitto on 127.0.0.1:{cfg.mqtt.port} (settings: vesper_sim/mosquitto.conf)")
        children.append(broker.start(ROOT / "var" / "mosquitto", cfg.mqtt.port))
    for name, command in procfile(ROOT / "Procfile").items():
        print(f"vesper: starting {name}: {command}")
        children.append(subprocess.Popen(shlex.split(command), cwd=ROOT, env=env))
    sim = [sys.executable, "-m", "vesper_sim", "--devices", str(DEMO_DEVICES), "--speed", str(DEMO_SPEED)]
    children.append(subprocess.Popen(sim, cwd=ROOT, env=env))

    host, _, port = cfg.web.bind.rpartition(":")
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}/"
    if "web" in procfile(ROOT / "Procfile") and wait_http(url + "healthz", 30):
        print(f"\n  Vesper Console is up: {url}\n  (a demo fleet of {DEMO_DEVICES} devices; Ctrl-C stops everything)\n")
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping and all(c.poll() is None for c in children):
        time.sleep(0.3)
    _stop_all(children)
    return 0


def _stop_all(children: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM in reverse start order, then wait; kill what does not stop in 15 s."""
    for child in reversed(children):
        if child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(15)
        except subprocess.TimeoutExpired:
            child.kill()


if __name__ == "__main__":
    sys.exit(main())
