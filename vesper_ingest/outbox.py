"""The events table as an outbox: publish committed events in id order, resume after outages."""

from __future__ import annotations

import logging
import sqlite3
import threading
from typing import Any

import paho.mqtt.client as mqtt

from shared import store
from shared.events import dumps

log = logging.getLogger(__name__)

MARKER = "published_id"
CHUNK = 100  # events per MQTT message when a backlog is published (SPEC §4 allows arrays)
MAX_PENDING = 2000  # unacknowledged publishes before we wait for the broker


class Outbox:
    """Tracks what was sent and what the broker confirmed; only the worker thread publishes."""

    def __init__(self, client: mqtt.Client, topic: str, conn: sqlite3.Connection) -> None:
        self.client = client
        self.topic = topic
        self.conn = conn
        self.sent = int(store.get_meta(conn, MARKER, "0") or 0)
        self.saved = self.sent
        self._lock = threading.Lock()
        self._pending: dict[int, int] = {}  # mid -> first event id in that message
        self._early: set[int] = set()
        self._resend = False
        self.republished = 0

    def reconnected(self) -> None:
        """Called on connect: anything unconfirmed is sent again (consumers dedupe by id)."""
        self._resend = True

    def on_puback(self, mid: int) -> None:
        """Broker confirmed a publish (network thread)."""
        with self._lock:
            if self._pending.pop(mid, None) is None:
                self._early.add(mid)

    def confirmed(self) -> int:
        """Highest id such that it and every id before it are confirmed by the broker."""
        with self._lock:
            return min(self._pending.values()) - 1 if self._pending else self.sent

    def save_marker(self, conn: sqlite3.Connection) -> None:
        """Persist the confirmed marker inside the caller's transaction."""
        confirmed = self.confirmed()
        if confirmed != self.saved:
            store.set_meta(conn, MARKER, str(confirmed))
            self.saved = confirmed

    def flush(self) -> int:
        """Publish every committed event after the last sent one; returns how many were sent."""
        if not self.client.is_connected():
            return 0
        if self._resend:
            self._resend = False
            start = self.confirmed()
            with self._lock:
                self._pending.clear()
                self._early.clear()
            self.republished += max(0, self.sent - start)
            self.sent = start
        total = 0
        while len(self._pending) < MAX_PENDING:
            events = store.events_after(self.conn, self.sent, limit=CHUNK * 10)
            if not events:
                break
            for i in range(0, len(events), CHUNK):
                if not self._publish(events[i : i + CHUNK]):
                    return total
                total += len(events[i : i + CHUNK])
        return total

    def _publish(self, events: list[dict[str, Any]]) -> bool:
        body = dumps(events[0] if len(events) == 1 else events)
        info = self.client.publish(self.topic, body, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            # NO_CONN or QUEUE_SIZE: paho may drop it; resend from the confirmed marker later.
            self._resend = True
            return False
        with self._lock:
            if info.mid in self._early:
                self._early.discard(info.mid)
            else:
                self._pending[info.mid] = events[0]["id"]
        self.sent = events[-1]["id"]
        return True

    def idle(self) -> bool:
        """True when every sent event is confirmed."""
        with self._lock:
            return not self._pending
