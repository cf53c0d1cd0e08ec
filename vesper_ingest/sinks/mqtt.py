"""The MQTT sink: publish committed events to the published topic, in id order, resuming after outages."""

from __future__ import annotations

import threading
from collections.abc import Callable

import paho.mqtt.client as mqtt

from vesper_ingest.sinks import Backlog, Wire

CHUNK = 100  # events per MQTT message (docs/events.md#published-topic allows an array of consecutive events)
MAX_PENDING = 2000  # unacknowledged publishes before we wait for the broker


class MqttSink:
    """Tracks what was sent and what the broker confirmed; only the ingest's worker thread publishes."""

    marker = "published_id"

    def __init__(self, client: mqtt.Client, topic: str, count: Callable[[str, int], None]) -> None:
        self.client = client
        self.topic = topic
        self.count = count  # events.published, events.published_late (from the backlog), events.republished
        self.sent = 0
        self._lock = threading.Lock()
        self._pending: dict[int, int] = {}  # mid -> first event id in that message
        self._early: set[int] = set()
        self._resend = False

    def start(self, position: int | None) -> None:
        """Begin after the persisted position (a new database: from the first event)."""
        self.sent = position or 0

    def reconnected(self) -> None:
        """Called on connect: anything unconfirmed is sent again (consumers dedupe by id)."""
        self._resend = True

    def on_puback(self, mid: int) -> None:
        """Broker confirmed a publish (network thread)."""
        with self._lock:
            if self._pending.pop(mid, None) is None:
                self._early.add(mid)

    def position(self) -> int:
        """Highest id such that it and every id before it are confirmed by the broker."""
        with self._lock:
            return min(self._pending.values()) - 1 if self._pending else self.sent

    def idle(self) -> bool:
        """True when every sent event is confirmed."""
        with self._lock:
            return not self._pending

    def deliver(self, fresh: list[Wire], backlog: Backlog) -> int:
        """Publish every committed event after the last sent one; fresh ones as they are when nothing older waits."""
        if not self.client.is_connected():
            return 0
        if self._resend:
            self._restart_from_confirmed()
        if fresh and fresh[0][0] == self.sent + 1:
            sent = self._publish_all(fresh)
            self.count("events.published", sent)
            return sent
        total = 0
        while len(self._pending) < MAX_PENDING:
            rows = backlog(self.sent, CHUNK * 10)
            if not rows:
                break
            sent = self._publish_all(rows)
            self.count("events.published", sent)
            self.count("events.published_late", sent)
            total += sent
            if sent < len(rows):
                break
        return total

    def _restart_from_confirmed(self) -> None:
        self._resend = False
        start = self.position()
        with self._lock:
            self._pending.clear()
            self._early.clear()
        self.count("events.republished", max(0, self.sent - start))
        self.sent = start

    def _publish_all(self, events: list[Wire]) -> int:
        for i in range(0, len(events), CHUNK):
            if not self._publish(events[i : i + CHUNK]):
                return i
        return len(events)

    def _publish(self, events: list[Wire]) -> bool:
        body = events[0][1] if len(events) == 1 else "[" + ",".join(e[1] for e in events) + "]"
        info = self.client.publish(self.topic, body, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            # NO_CONN or QUEUE_SIZE: paho may drop it; resend from the confirmed marker later.
            self._resend = True
            return False
        with self._lock:
            if info.mid in self._early:
                self._early.discard(info.mid)
            else:
                self._pending[info.mid] = events[0][0]
        self.sent = events[-1][0]
        return True
