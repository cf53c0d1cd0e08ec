"""Each web worker's MQTT client: doorbells from the published topic into the hub, operator commands out."""

from __future__ import annotations

import functools
import json
import logging
import os
import socket
import ssl
import sys
import time
from collections.abc import Callable
from contextlib import closing
from typing import Any

import paho.mqtt.client as mqtt
from flask import Flask

from shared import store
from shared.config import Config
from shared.mqtt import describe, make_client
from shared.ratelog import RateLimitedLog
from shared.topics import Topics
from vesper_web.hub import Hub

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 5.0
FAIL_LOG_INTERVAL_S = 30.0
MAX_ID = 2**63 - 1  # the highest id either engine can store
WIRE_TYPES = {"ts": str, "type": str, "severity": str, "source_id": str, "payload": dict}  # docs/events.md#event-form


def announced_ids(payload: bytes | str) -> list[int] | None:
    """The ids a message on the published topic announces; None unless it is a well-formed event or batch."""
    try:
        obj = json.loads(payload)
    except (ValueError, RecursionError):  # not UTF-8, not JSON, or nested past the recursion limit
        return None
    items = obj if isinstance(obj, list) else [obj]
    if not items or not all(_well_formed(item) for item in items):
        return None
    return [item["id"] for item in items]


def _well_formed(item: Any) -> bool:
    """An event in its wire form: an id the store can hold (not a bool, a subclass of int), each field its type."""
    return (
        isinstance(item, dict)
        and type(item.get("id")) is int
        and 0 < item["id"] <= MAX_ID
        and all(type(item.get(key)) is kind for key, kind in WIRE_TYPES.items())
    )


def worker_client_id(cfg: Config) -> str:
    """A client id of this process alone: two clients with one id would kick each other off."""
    return f"{cfg.mqtt.client_id}-web-{socket.gethostname()[:32]}-{os.getpid()}"


def _guarded(callback: Callable[..., None]) -> Callable[..., None]:
    """An exception escaping a paho callback would kill the network loop: log it instead."""

    @functools.wraps(callback)
    def wrapper(*args: Any) -> None:
        try:
            callback(*args)
        except Exception:
            log.exception("bridge %s failed", callback.__name__)

    return wrapper


class Bridge:
    """Subscribes to the published events (clean session) and feeds them to the worker's hub."""

    def __init__(self, cfg: Config, hub: Hub) -> None:
        self.cfg = cfg
        self.hub = hub
        self.client_id = worker_client_id(cfg)
        self.topic = Topics(cfg.mqtt.topic_prefix).published
        self.connected = False
        self.since = time.time()  # not connected since it was made; then the last connect or loss (/api/status)
        self.stopping = False
        self.connects = 0
        self.delivered = 0  # events the hub delivered (live and filled), each counted once
        self._fail_log = RateLimitedLog(log, FAIL_LOG_INTERVAL_S)
        self.client = make_client(cfg.mqtt, self.client_id)
        self.client.on_connect = _guarded(self._on_connect)
        self.client.on_connect_fail = _guarded(self._on_connect_fail)
        self.client.on_disconnect = _guarded(self._on_disconnect)
        self.client.on_subscribe = _guarded(self._on_subscribe)
        self.client.on_message = _guarded(self._on_message)

    def start(self) -> None:
        """Start live after what is stored now; connect in the background, retrying while the broker is away."""
        with closing(store.connect(self.cfg.database.target, readonly=True)) as conn:
            self.hub.start(store.last_event_id(conn))
        log.info("bridge %s connecting to %s", self.client_id, describe(self.cfg.mqtt))
        self.client.connect_async(self.cfg.mqtt.host, self.cfg.mqtt.port, keepalive=self.cfg.mqtt.keepalive_s)
        self.client.loop_start()

    def stop(self) -> None:
        """Disconnect cleanly and end the network loop."""
        self.stopping = True
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, topic: str, payload: str, timeout: float = PUBLISH_TIMEOUT_S) -> bool:
        """QoS 1 publish; True once the broker acknowledged it."""
        if not self.connected:
            return False
        info = self.client.publish(topic, payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            log.warning("publish to %s failed: %s", topic, mqtt.error_string(info.rc))
            return False
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError) as exc:
            log.warning("publish to %s failed: %s", topic, exc)
            return False
        return info.is_published()

    # --- paho callbacks: short; _guarded keeps any exception inside -----------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.error("broker %s refused the bridge: %s", describe(self.cfg.mqtt), reason)
            return
        self.connected = True
        self.since = time.time()  # when it last connected or lost the broker (/api/status)
        self.connects += 1
        client.subscribe(self.topic, qos=1)  # in on_connect, so it survives reconnects
        log.info("bridge connected to %s as %s", describe(self.cfg.mqtt), self.client_id)

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        # paho calls this inside its `except OSError`: the error is the current exception. A TLS
        # refusal (wrong CA, wrong host name) is a misconfiguration: say so on every attempt.
        error = sys.exc_info()[1]
        self._fail_log.warning("connect", "bridge cannot connect to %s: %s; retrying", describe(self.cfg.mqtt),
                               error or "no answer", force=isinstance(error, ssl.SSLError))  # fmt: skip

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self.connected = False
        self.since = time.time()  # when it last connected or lost the broker (/api/status)
        if not self.stopping:
            log.warning("bridge lost the broker at %s: %s; retrying", describe(self.cfg.mqtt), reason)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        if any(r.is_failure for r in reasons):
            log.error("bridge subscription to %s refused: %s", self.topic, reasons)
            return
        # Subscribed: every event committed from here on arrives by MQTT; read what came before.
        filled = self.hub.resync()
        self.delivered += filled
        if filled:
            log.info("bridge read %d events missed while disconnected from the database", filled)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        # A doorbell, not the record: the hub delivers the stored events up to the ids it announces.
        self.delivered += self.hub.doorbell(announced_ids(message.payload))

    @property
    def reconnects(self) -> int:
        """Connections after the first (each one follows a lost broker)."""
        return max(0, self.connects - 1)


def start_for_app(app: Flask) -> Bridge:
    """The gunicorn post_worker_init hook's work: one bridge per worker, on the app's hub."""
    bridge = Bridge(app.config["VESPER"], app.extensions["vesper_hub"])
    app.extensions["vesper_bridge"] = bridge
    bridge.start()
    return bridge


def stop_for_app(app: Flask | None) -> None:
    """The gunicorn worker_exit hook's work: end the streams and disconnect."""
    if app is None or not hasattr(app, "extensions"):
        return
    hub = app.extensions.get("vesper_hub")
    if hub is not None:
        hub.close_all()
    bridge = app.extensions.pop("vesper_bridge", None)
    if bridge is not None:
        bridge.stop()
