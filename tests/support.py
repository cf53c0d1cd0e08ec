"""Test helpers: a real MQTT peer that records what it receives, and process runners."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from harness.clock import FakeClock as FakeClock  # re-exported: the tests import it from here
from shared import store
from shared.events import parse_published

ROOT = Path(__file__).resolve().parent.parent


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll predicate until it returns something truthy; fail with `what` after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


class Peer:
    """A real paho client for tests: publishes like a device, records what it receives."""

    def __init__(self, port: int, client_id: str = "", subscribe: list[str] | None = None) -> None:
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.received: list[mqtt.MQTTMessage] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id)
        self._subs = subscribe or []
        self._subscribed = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.max_queued_messages_set(0)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if self._subs:
            assert self._subscribed.wait(10), "test peer could not subscribe"

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if self._subs:
            client.subscribe([(t, 1) for t in self._subs])

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.received.append(msg)

    def publish(self, topic: str, payload: bytes | str | dict[str, Any], qos: int = 1, retain: bool = False) -> None:
        """Publish and wait until the broker has it."""
        if isinstance(payload, dict):
            payload = json.dumps(payload)
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(10)

    def events(self) -> list[dict[str, Any]]:
        """Every classified event received on the published topic, in arrival order."""
        with self._lock:
            msgs = list(self.received)
        out: list[dict[str, Any]] = []
        for m in msgs:
            if m.topic.endswith("/console/published"):
                out.extend(parse_published(m.payload))
        return out

    def unique_events(self) -> list[dict[str, Any]]:
        """Events deduplicated by id, in id order."""
        return sorted({e["id"]: e for e in self.events()}.values(), key=lambda e: e["id"])

    def wait_events(self, n: int, timeout: float = 10.0, **match: Any) -> list[dict[str, Any]]:
        """Wait for at least n unique events whose fields equal `match`."""

        def found() -> list[dict[str, Any]]:
            hits = [e for e in self.unique_events() if all(e.get(k) == v for k, v in match.items())]
            return hits if len(hits) >= n else []

        return wait_for(found, timeout, f"{n} events matching {match}; got {self.unique_events()}")

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


class Process:
    """A real Vesper process started with its own config, its output kept in a log file."""

    def __init__(self, args: list[str], config: Path, log: Path, env: dict[str, str] | None = None) -> None:
        self.log_path = log
        full_env = {**os.environ, "VESPER_CONFIG": str(config), "PYTHONUNBUFFERED": "1", **(env or {})}
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(args, cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT)

    def output(self) -> str:
        """Everything the process printed so far."""
        return self.log_path.read_text(errors="replace")

    def wait_output(self, text: str, timeout: float = 15.0, count: int = 1) -> None:
        """Wait until `text` appeared `count` times in the output."""
        wait_for(lambda: self.output().count(text) >= count, timeout, f"{text!r} in {self.log_path}:\n{self.output()}")

    def kill(self) -> None:
        """SIGKILL and reap."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait for the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        return code


def ingest_args() -> list[str]:
    """Command line of the ingest process."""
    return [sys.executable, "-m", "vesper_ingest"]


def web_args() -> list[str]:
    """Command line of the web process, as the Procfile has it."""
    return [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "vesper_web:create_app()"]


def run_ingest_to_exit(config: Path, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run the ingest with this config until it exits on its own (start-up refusals)."""
    return subprocess.run(
        ingest_args(),
        cwd=ROOT,
        env={"VESPER_CONFIG": str(config), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def alert_events(conn: store.Connection) -> list[tuple[str, str, str, str | None]]:
    """The stored alert events in id order as (type, device, subsystem, message)."""
    return [
        (e["type"], e["source_id"], e["payload"]["subsystem"], e["payload"].get("message"))
        for e in store.events_after(conn, 0, limit=1_000_000)
        if e["type"] in ("alert", "alert_cleared")
    ]
