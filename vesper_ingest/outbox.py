"""The events table as an outbox: publish committed events in id order, resume after outages."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable

import paho.mqtt.client as mqtt

from shared import store
from shared.events import wire_json

log = logging.getLogger(__name__)

MARKER = "published_id"
CHUNK = 100  # events per MQTT message (SPEC §4 allows an array of consecutive events)
MAX_PENDING = 2000  # unacknowledged publishes before we wait for the broker

Wire = tuple[int, str]  # (event id, event JSON)


class Outbox:
    """Tracks what was sent and what the broker confirmed; only the worker thread publishes."""

    def __init__(
        self, client: mqtt.Client, topic: str, conn: sqlite3.Connection, count: Callable[[str, int], None]
    ) -> None:
        self.client = client
        self.topic = topic
        self.conn = conn
        self.sent = int(store.get_meta(conn, MARKER, "0") or 0)
        self.saved = self.sent
        self._lock = threading.Lock()
        self._pending: dict[int, int] = {}  # mid -> first event id in that message
        self._early: set[int] = set()
        self._resend = False
        self.count = count  # events.published, events.published_late (from the backlog), events.republished

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

    def flush(self, fresh: list[Wire] | None = None) -> int:
        """Publish every committed event after the last sent one; returns how many were sent.

        `fresh` are the events the caller just committed, already encoded: when nothing older is
        waiting they are sent as they are, without reading them back from the database.
        """
        if not self.client.is_connected():
            return 0
        if self._resend:
            self._resend = False
            start = self.confirmed()
            with self._lock:
                self._pending.clear()
                self._early.clear()
            self.count("events.republished", max(0, self.sent - start))
            self.sent = start
        if fresh and fresh[0][0] == self.sent + 1:
            sent = self._publish_all(fresh)
            self.count("events.published", sent)
            return sent
        total = 0
        while len(self._pending) < MAX_PENDING:
            rows = store.event_rows_after(self.conn, self.sent, CHUNK * 10)
            if not rows:
                break
            sent = self._publish_all([(r[0], wire_json(*r)) for r in rows])
            self.count("events.published", sent)
            self.count("events.published_late", sent)
            total += sent
            if sent < len(rows):
                break
        return total

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

    def idle(self) -> bool:
        """True when every sent event is confirmed."""
        with self._lock:
            return not self._pending
