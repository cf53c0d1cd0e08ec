"""The ingest's paho callbacks: short, and nothing escapes them; they hand what they get to the worker."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from shared.config import Config
from shared.mqtt import describe
from shared.topics import Topics
from vesper_ingest.batch import Inbound
from vesper_ingest.inbox import Inbox
from vesper_ingest.sinks.mqtt import MqttSink
from vesper_ingest.stats import Stats

log = logging.getLogger(__name__)


class Callbacks:
    """Mixed into the Ingest: what each paho callback does with the ingest's state."""

    cfg: Config
    topics: Topics
    stats: Stats
    inbox: Inbox
    stopping: threading.Event
    generation: int
    published: MqttSink

    def connected(self, session_present: bool = False) -> None:
        """Connected to the broker (the Ingest's)."""
        raise NotImplementedError

    def disconnected(self, reason: str = "lost the broker") -> None:
        """Lost the broker (the Ingest's)."""
        raise NotImplementedError

    def attach(self, client: mqtt.Client) -> None:
        """Route the client's callbacks here."""
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail(client.on_connect_fail)
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_publish = self._on_publish

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        try:
            if reason.is_failure:
                log.error("broker %s refused the connection: %s", describe(self.cfg.mqtt), reason)
                self.disconnected(f"the broker refused the connection: {reason}")
                return
            self.connected(bool(flags.session_present))
            self.stats.count("mqtt.connects")
            if flags.session_present:
                log.info("connected to %s (session resumed)", describe(self.cfg.mqtt))
            else:  # "connected" once the broker granted the subscriptions: a device heard from then on is taken
                client.subscribe(self.topics.subscriptions())
            self.inbox.put(None)
        except Exception:
            log.exception("on_connect failed")

    def _on_connect_fail(self, logged: Callable[..., None]) -> Callable[..., None]:
        """make_client's handler (it logs why), then: blind since the first failure, with that reason."""
        return lambda *args: (logged(*args), self.disconnected(f"cannot connect to the broker: {sys.exc_info()[1]}"))

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        try:
            for (topic, _qos), reason in zip(self.topics.subscriptions(), reasons, strict=False):
                if reason.is_failure:
                    log.error("broker %s refused the subscription to %s: %s", describe(self.cfg.mqtt), topic, reason)
            log.info("connected to %s (session new)", describe(self.cfg.mqtt))
        except Exception:
            log.exception("on_subscribe failed")

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        try:
            self.disconnected(f"lost the broker: {reason}")
            if not self.stopping.is_set():
                self.stats.count("mqtt.disconnects")
                log.warning("disconnected from %s: %s; retrying", describe(self.cfg.mqtt), reason)
        except Exception:
            log.exception("on_disconnect failed")

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            m = message
            self.inbox.put(Inbound(m.topic, m.payload, bool(m.retain), m.mid, m.qos, self.generation, bool(m.dup)))
        except Exception:
            log.exception("on_message failed")

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        try:
            self.published.on_puback(mid)
        except Exception:
            log.exception("on_publish failed")
