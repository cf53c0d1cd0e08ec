"""Per-worker fan-out of stored events to stream clients; a published message is a doorbell, not the record.

A well-formed message on the published topic only says which ids are new: the hub reads the store after
its last id up to the highest one announced (which also fills any hole) and delivers the stored text, so
a forged event is never shown, only the stored one with its id (docs/architecture.md#bridge-and-hub).
Frames go into rings (vesper_web/ring.py). Batching by load: waking N clients costs N greenlet
switches and N socket writes whether each write carries one frame or ten, so a ring is woken at most
every twice what its last rounds of wake-ups took, measured on this machine (at most MAX_SPACING_S):
nothing for a few clients, ~50 ms for 1,000 on a slow 2-core VM, 100 ms for 5,000. Frames arriving in
between go out together, which bounds the fan-out's CPU to about half a core whatever the event rate.
The store is never read while the feed lock is held: under gevent a slow read would stall every client of the worker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import closing
from pathlib import Path
from typing import Any

from shared import store
from shared.events import wire_json
from shared.ratelog import RateLimitedLog
from shared.store.dialect import TRANSIENT
from shared.store.reads import EVENT_CHUNK, event_rows_after, last_event_id_at
from shared.store.scope import MONITOR_TYPES
from vesper_web import sse
from vesper_web.ring import RESTART_ID, Item, Ring, Subscriber

log = logging.getLogger(__name__)

DROP_LOG_INTERVAL_S = 10.0
IGNORE_LOG_INTERVAL_S = 10.0
SLACK_DIVISOR = 8  # a ring of queue_size + queue_size/8 frames; laggards looked for every queue_size/8 events
RESTART: Item = (RESTART_ID, "", sse.frame(comment="event ids start again"))
Row = tuple[int, float, str, str, str, str]  # a stored event: id, ts, type, severity, source_id, payload JSON


class Hub:
    """Delivers each event once, in id order, to every subscriber; drops clients that fall behind."""

    def __init__(self, db_path: str | Path, queue_size: int, max_streams: int) -> None:
        self.db_path = db_path
        self.queue_size = queue_size
        self.slack = max(1, queue_size // SLACK_DIVISOR)
        self.max_streams = max_streams
        self.last_id = 0  # highest event id delivered, in order, with nothing missing below it
        self.last_ts = 0.0  # the newest stored time delivered (or the start): what the store holds before is history
        self.dropped = 0
        self.filled = 0  # events read from the store that no message in hand announced (holes, reconnects)
        self.bad = 0  # messages trusted for nothing: not well-formed, or announcing an id the store does not hold
        self.malformed = 0  # of them, those that were not a well-formed event or batch
        self.closing = False  # the worker is stopping: no new streams (they would hold it until graceful_timeout)
        self._all = Ring(queue_size + self.slack)
        self._rings: dict[str, Ring] = {}  # device id -> the ring of the clients filtering on it
        self._subs: dict[Subscriber, None] = {}
        self._lock = threading.Lock()
        self._feed = threading.Lock()
        self._drop_log = RateLimitedLog(log, DROP_LOG_INTERVAL_S)
        self._ignore_log = RateLimitedLog(log, IGNORE_LOG_INTERVAL_S)
        self._tick_s: float | None = None  # set while the waker runs
        self._pending: set[Ring] = set()  # rings with a deferred wake-up
        self._kick = threading.Event()  # tells the waker a wake-up was deferred

    # --- clients ---------------------------------------------------------------------------

    def subscribe(
        self, device: str | None = None, on_drop: Callable[[], None] | None = None, keepalive_s: float | None = None
    ) -> Subscriber | None:
        """Register a client; None when this worker already serves max_streams or is stopping.

        With `keepalive_s` the hub's waker wakes every client at least every keepalive_s / 2 (one
        timer for all of them, not one per wait), so an idle stream can send its keepalive; it
        also runs the deferred wake-ups that batch frames under load.
        """
        with self._lock:
            if self.closing or len(self._subs) >= self.max_streams:
                return None
            if device is None:
                ring = self._all
            else:
                ring = self._rings.get(device) or self._rings.setdefault(device, Ring(self._all.capacity))
            sub = Subscriber(device, ring, on_drop)
            ring.subs[sub] = None
            self._subs[sub] = None
            if keepalive_s is not None and (self._tick_s is None or keepalive_s / 2 < self._tick_s):
                start = self._tick_s is None
                self._tick_s = keepalive_s / 2
                if start:
                    threading.Thread(target=self._waker, name="stream-waker", daemon=True).start()
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        """Forget a client (idempotent)."""
        with self._lock:
            if self._subs.pop(sub, 0) is None:
                sub.ring.subs.pop(sub, None)
                if sub.device is not None and not sub.ring.subs and self._rings.get(sub.device) is sub.ring:
                    del self._rings[sub.device]

    @property
    def clients(self) -> int:
        """How many stream clients are registered."""
        return len(self._subs)

    def close_all(self) -> None:
        """End every stream (worker shutdown): clients reconnect elsewhere with Last-Event-ID."""
        self.closing = True
        with self._lock:
            subs = list(self._subs)
            rings = [self._all, *self._rings.values()]
        for sub in subs:
            sub.closed = True
            self.unsubscribe(sub)
        with self._feed:  # one notifier at a time: two could each replace the event and lose a waiter
            self._notify(rings, time.monotonic())

    def _waker(self) -> None:
        """Run deferred wake-ups when due, and wake every client each tick (for keepalives).

        Ends when no client is left; until it runs again, wake-ups are not deferred.
        """
        next_tick = time.monotonic() + (self._tick_s or 1.0)
        while True:
            with self._feed:
                now = time.monotonic()
                if now >= next_tick:
                    with self._lock:
                        if not self._subs:
                            self._notify(list(self._pending), now)
                            self._tick_s = None
                            return
                        rings = [self._all, *self._rings.values()]
                    self._notify(rings, now)
                    next_tick = now + (self._tick_s or 1.0)
                else:
                    self._notify([r for r in self._pending if r.due is not None and r.due <= now], now)
                sleep = min([next_tick, *(r.due for r in self._pending if r.due is not None)]) - now
                self._kick.clear()  # under _feed: a deferral after this sets it again
            self._kick.wait(max(0.0, sleep))

    # --- feeding (the bridge's callbacks) --------------------------------------------------

    def start(self, last_id: int, now: float | None = None) -> None:
        """Begin after this id: what is already stored (before `now`, wall clock) is history, not live."""
        with self._feed:
            self.last_id = last_id
            self.last_ts = time.time() if now is None else now

    def doorbell(self, ids: list[int] | None) -> int:
        """A published message announced these ids (None: not a well-formed event or batch): deliver the stored ones."""
        if not ids:
            self.malformed += 1
            self._ignore("not a well-formed event or batch")
            return 0
        return self._sync(max(ids), set(ids))

    def resync(self) -> int:
        """After a (re)connect: deliver every stored event past last_id that MQTT may have missed."""
        return self._sync(None, set())

    def _sync(self, top: int | None, announced: set[int]) -> int:
        """Deliver the stored events after last_id (up to `top`); never past what the store holds."""
        delivered = 0
        try:
            if top is None or top > self.last_id:
                delivered = self._fill(top, announced)
                if top is not None and self.last_id >= top:
                    return delivered  # the usual doorbell: one read
            with closing(store.connect(self.db_path, readonly=True, pooled=True)) as conn:
                stored = store.last_event_id(conn)  # a repeat, an id not stored (yet), or a reconnect
            if stored < self.last_id:
                delivered += self._restart(stored, top, announced)
            if top is not None and top > stored:  # forged, or not committed: wait for the next doorbell
                self._ignore(f"an event id ({top}) past the database's last ({stored})")
        except TRANSIENT as exc:
            self._ignore_log.warning("store", "cannot read the events (%s); read again at the next message", exc)
        return delivered

    def _fill(self, top: int | None, announced: set[int]) -> int:
        """Deliver the stored events after last_id (to `top`): each chunk read unlocked, then delivered locked."""
        count = 0
        with closing(store.connect(self.db_path, readonly=True, pooled=True)) as conn:
            while True:
                limit = EVENT_CHUNK if top is None else min(EVENT_CHUNK, top - self.last_id)
                if limit <= 0:
                    return count
                rows = event_rows_after(conn, self.last_id, limit)  # ids are unique: `limit` rows reach `top`
                if top is not None:
                    rows = [row for row in rows if row[0] <= top]
                count += self._deliver_rows(rows, announced)
                if len(rows) < limit:
                    return count

    def _deliver_rows(self, rows: list[Row], announced: set[int]) -> int:
        """Deliver what is still new of these stored rows, each as its stored text."""
        count = 0
        with self._feed:
            touched: set[Ring] = set()
            for row in rows:
                if row[0] > self.last_id:
                    self._deliver(touched, row[0], row[4], wire_json(*row), row[2] in MONITOR_TYPES)
                    self.last_ts = max(self.last_ts, row[1])
                    self.filled += row[0] not in announced
                    count += 1
            self._wake(touched)
        return count

    def _restart(self, stored: int, top: int | None, announced: set[int]) -> int:
        """The database's ids went backwards (restored, recreated): start again after its events older than ours."""
        with closing(store.connect(self.db_path, readonly=True, pooled=True)) as conn:
            after = min(stored, last_event_id_at(conn, self.last_ts))
        log.warning("the database's event ids went backwards (its last is %d, this worker had delivered %d): "
                    "delivering its events after %d", stored, self.last_id, after)  # fmt: skip
        with self._feed:
            self.last_id = after
            with self._lock:
                rings = [ring for ring in (self._all, *self._rings.values()) if ring.subs]
            for ring in rings:
                ring.append(RESTART)  # a stream skips ids it has sent: after this one they start again
            self._wake(rings)
        return self._fill(top, announced)

    def _ignore(self, what: str) -> None:
        """Count a message on the published topic that carries no event we can trust."""
        self.bad += 1
        self._ignore_log.warning("ignored", "ignored %d messages on the published topic, the last: %s", self.bad, what)

    def _deliver(self, touched: set[Ring], event_id: int, source_id: str, event_json: str, own: bool) -> None:
        """Frame once; append the same bytes to the rings of every interested client (`own`: the monitor's event)."""
        item: Item = (event_id, "" if own else source_id, sse.event(event_id, event_json))
        self.last_id = event_id
        for ring in (self._all, self._rings.get(source_id)):
            if ring is None or not ring.subs:
                continue
            ring.append(item)
            touched.add(ring)
            if ring.head - ring.scanned >= self.slack:
                self._drop_laggards(ring)

    def _wake(self, touched: Iterable[Ring]) -> None:
        """New frames in these rings: wake their clients now, or once the ring's spacing has passed (_feed held)."""
        now = time.monotonic()
        for ring in touched:
            if ring.due is not None:
                continue  # a wake-up is already due; it carries these frames too
            due = ring.last_wake + ring.spacing()
            if due <= now or self._tick_s is None:  # no waker running: no deferring
                self._notify([ring], now)
            else:
                ring.due = due
                self._pending.add(ring)
                self._kick.set()

    def _notify(self, rings: Iterable[Ring], now: float) -> None:
        """Wake the clients waiting on these rings now (_feed held)."""
        for ring in rings:
            ring.due = None
            self._pending.discard(ring)
            ring.notify(now)

    def _drop_laggards(self, ring: Ring) -> None:
        """End the streams of clients more than queue_size frames behind; the others never wait for them."""
        ring.scanned = ring.head
        oldest = ring.head - self.queue_size
        for sub in [s for s in ring.subs if s.cursor < oldest]:
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
        self._drop_log.warning("dropped", "dropped a stream client that fell behind (%d dropped so far)", self.dropped)

    def stats(self) -> dict[str, Any]:
        """Counters for /healthz."""
        return {"clients": self.clients, "dropped": self.dropped, "filled_from_db": self.filled}
