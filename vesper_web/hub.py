"""Per-worker fan-out of published events to stream clients; SQLite fills any hole in the ids."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from contextlib import closing, suppress
from pathlib import Path
from typing import Any

from shared import store
from shared.events import dumps, parse_published
from vesper_web import sse

log = logging.getLogger(__name__)

Item = tuple[int, str, bytes]  # (event id, source device id, SSE frame): built once, shared by every client
READ_CHUNK = 1000
DROP_LOG_INTERVAL_S = 10.0


class Subscriber:
    """One stream client: a bounded queue of frames and an optional device filter."""

    __slots__ = ("device", "queue", "closed", "on_drop")

    def __init__(self, device: str | None, size: int, on_drop: Callable[[], None] | None = None) -> None:
        self.device = device
        # Looked up at call time: in a gevent worker this is gevent's queue (monkey patched).
        self.queue: queue.Queue[Item | None] = queue.Queue(size)
        self.closed = False
        self.on_drop = on_drop


class Hub:
    """Delivers each event once, in id order, to every subscriber; drops clients that fall behind."""

    def __init__(self, db_path: str | Path, queue_size: int, max_streams: int) -> None:
        self.db_path = db_path
        self.queue_size = queue_size
        self.max_streams = max_streams
        self.last_id = 0  # highest event id delivered, in order, with nothing missing below it
        self.dropped = 0
        self.filled = 0  # events read from SQLite because MQTT did not bring them
        self.bad = 0
        self.closing = False  # the worker is stopping: no new streams (they would hold it until graceful_timeout)
        self._subs: dict[Subscriber, None] = {}
        self._snapshot: tuple[Subscriber, ...] = ()
        self._lock = threading.Lock()
        self._feed = threading.Lock()
        self._last_drop_log = 0.0

    # --- clients ---------------------------------------------------------------------------

    def subscribe(self, device: str | None = None, on_drop: Callable[[], None] | None = None) -> Subscriber | None:
        """Register a client; None when this worker already serves max_streams or is stopping."""
        with self._lock:
            if self.closing or len(self._subs) >= self.max_streams:
                return None
            sub = Subscriber(device, self.queue_size, on_drop)
            self._subs[sub] = None
            self._snapshot = tuple(self._subs)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        """Forget a client (idempotent)."""
        with self._lock:
            if self._subs.pop(sub, 0) is None:
                self._snapshot = tuple(self._subs)

    @property
    def clients(self) -> int:
        """How many stream clients are registered."""
        return len(self._snapshot)

    def close_all(self) -> None:
        """End every stream (worker shutdown): clients reconnect elsewhere with Last-Event-ID."""
        self.closing = True
        for sub in self._snapshot:
            sub.closed = True
            with suppress(queue.Full):  # a full queue means it is awake anyway
                sub.queue.put_nowait(None)
            self.unsubscribe(sub)

    # --- feeding (the bridge's callbacks) --------------------------------------------------

    def start(self, last_id: int) -> None:
        """Begin after this id: what is already stored is history, not live."""
        with self._feed:
            self.last_id = last_id

    def receive(self, payload: bytes | str) -> int:
        """One message from the published topic; returns how many events were delivered."""
        try:
            events = sorted(parse_published(payload), key=lambda e: e["id"])
        except (ValueError, RecursionError):  # not JSON, or nested past the recursion limit
            self._ignore("not event JSON")
            return 0
        if not events:
            self._ignore("JSON without an event in it")
            return 0
        delivered = 0
        with self._feed:
            for event in events:
                if event["id"] <= self.last_id:
                    continue  # a duplicate (QoS 1 redelivery, or already read from SQLite)
                if event["id"] > self.last_id + 1:
                    if event["id"] > self._stored_last_id():  # an id SQLite never gave: forged, not a hole
                        self._ignore(f"an event id ({event['id']}) past the database's last")
                        break  # jumping to it would hide every real event below it; the rest are higher
                    delivered += self._read_stored(upto=event["id"] - 1)
                self._deliver(event["id"], event.get("source_id", ""), dumps(event))
                delivered += 1
        return delivered

    def _ignore(self, what: str) -> None:
        """Count a message on the published topic that carries no event we can trust."""
        self.bad += 1
        if self.bad == 1 or self.bad % 1000 == 0:
            log.warning("ignored %d messages on the published topic, the last: %s", self.bad, what)

    def _stored_last_id(self) -> int:
        with closing(store.connect(self.db_path, readonly=True)) as conn:
            return store.last_event_id(conn)

    def resync(self) -> int:
        """After a (re)connect: deliver every stored event past last_id that MQTT may have missed."""
        with self._feed:
            return self._read_stored(upto=None)

    def _read_stored(self, upto: int | None) -> int:
        """Deliver stored events after last_id (up to `upto`), in short reads; SQLite is the record."""
        count = 0
        with closing(store.connect(self.db_path, readonly=True)) as conn:
            while True:
                rows = store.events_after(conn, self.last_id, limit=READ_CHUNK)
                wanted = [e for e in rows if upto is None or e["id"] <= upto]
                for event in wanted:
                    self._deliver(event["id"], event["source_id"], dumps(event))
                count += len(wanted)
                if len(wanted) < READ_CHUNK:
                    break
        if upto is not None:
            self.last_id = max(self.last_id, upto)  # ids that no longer exist (pruned) are not waited for
        self.filled += count
        return count

    def _deliver(self, event_id: int, source_id: str, event_json: str) -> None:
        """Serialise once; put the same bytes on every interested client's queue."""
        item: Item = (event_id, source_id, sse.event(event_id, event_json))
        self.last_id = event_id
        for sub in self._snapshot:
            if sub.device is not None and sub.device != source_id:
                continue
            try:
                sub.queue.put_nowait(item)
            except queue.Full:
                self._drop(sub)

    def _drop(self, sub: Subscriber) -> None:
        """A client that stopped reading: end its stream; the others never wait for it."""
        sub.closed = True
        self.unsubscribe(sub)
        self.dropped += 1
        if sub.on_drop is not None:
            try:
                sub.on_drop()
            except Exception:
                log.exception("closing a dropped stream failed")
        now = time.monotonic()
        if now - self._last_drop_log >= DROP_LOG_INTERVAL_S:
            self._last_drop_log = now
            log.warning("dropped a stream client whose queue was full (%d dropped so far)", self.dropped)

    def stats(self) -> dict[str, Any]:
        """Counters for /healthz."""
        return {"clients": self.clients, "dropped": self.dropped, "filled_from_db": self.filled}
