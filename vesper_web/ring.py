"""A ring of SSE frames per filter and the stream clients reading it (docs/architecture.md#fan-out).

Each event is framed once and appended to a shared ring (one for every unfiltered client, one per
device some client filters on); a client is a cursor into its ring, so delivering an event is an
append and one wake-up of the clients waiting on that ring, with no per-client work.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

# (event id, its device: the source id, "" for an event of no device (the monitor's own, §14), SSE frame):
# built once, shared by every client.
Item = tuple[int, str, bytes]
RESTART_ID = 0  # the id of the item that says the database's ids went backwards: ids after it start again
SPACING_PER_CLIENT_S = 10e-6  # the least spacing per client, before a round has been measured
ROUND_FACTOR = 2.0  # spacing = twice what a round of wake-ups takes: the fan-out takes at most ~half a core
ROUND_WEIGHT = 0.3  # how far the latest round moves the measured cost (an exponential moving average)
MAX_SPACING_S = 0.1


class Ring:
    """The last `capacity` frames of one filter (every event, or one device's), by sequence number."""

    __slots__ = ("items", "capacity", "head", "scanned", "wake", "subs", "last_wake", "due", "woken", "back", "round_s")

    def __init__(self, capacity: int) -> None:
        self.items: list[Item] = []
        self.capacity = capacity
        self.head = 0  # the sequence number the next frame gets
        self.scanned = 0  # head when laggards were last looked for
        # Looked up at call time: in a gevent worker this is gevent's Event (monkey patched).
        self.wake = threading.Event()
        self.subs: dict[Subscriber, None] = {}
        self.last_wake = 0.0  # when the waiting clients were last woken
        self.due: float | None = None  # when the next (deferred) wake-up is due, if one is
        self.woken = 0  # clients woken by the last wake-up
        self.back = 0  # of them, how many have written and are waiting again
        self.round_s = 0.0  # what a round of wake-ups takes here (waking, framing, writing), measured

    def spacing(self) -> float:
        """The least time between two wake-ups: twice a measured round (so on any machine), at most MAX_SPACING_S."""
        return min(MAX_SPACING_S, max(len(self.subs) * SPACING_PER_CLIENT_S, ROUND_FACTOR * self.round_s))

    def done(self, now: float) -> None:
        """A woken client has written and waits again; the last one closes the round's measurement."""
        self.back += 1
        if self.back == self.woken:
            took = min(MAX_SPACING_S, now - self.last_wake)
            self.round_s += ROUND_WEIGHT * (took - self.round_s)

    def append(self, item: Item) -> None:
        """Add a frame, overwriting the oldest once the ring is full."""
        if len(self.items) < self.capacity:
            self.items.append(item)
        else:
            self.items[self.head % self.capacity] = item
        self.head += 1

    def since(self, cursor: int, limit: int) -> list[Item]:
        """Frames from sequence number `cursor` on, at most `limit`."""
        n = min(self.head - cursor, limit)
        if n <= 0:
            return []
        start = cursor % self.capacity
        if start + n <= self.capacity:
            return self.items[start : start + n]
        return self.items[start:] + self.items[: start + n - self.capacity]

    def notify(self, now: float) -> None:
        """Wake every client waiting on this ring; later waiters wait on a fresh event (hub._feed held)."""
        self.last_wake, self.woken, self.back = now, len(self.subs), 0
        woken, self.wake = self.wake, threading.Event()
        woken.set()


class Subscriber:
    """One stream client: a cursor into its ring, and an optional device filter."""

    __slots__ = ("device", "ring", "cursor", "closed", "on_drop")

    def __init__(self, device: str | None, ring: Ring, on_drop: Callable[[], None] | None = None) -> None:
        self.device = device
        self.ring = ring
        self.cursor = ring.head  # live from now on: what is already stored is the catch-up's
        self.closed = False
        self.on_drop = on_drop

    def take(self, limit: int) -> list[Item]:
        """The frames waiting for this client (at most `limit`), without blocking."""
        items = self.ring.since(self.cursor, limit)
        self.cursor += len(items)
        return items

    def wait(self, timeout: float | None = None) -> None:
        """Block until a frame is waiting, the stream is closed, the hub ticks, or the timeout passes."""
        ring = self.ring
        ring.done(time.monotonic())
        wake = ring.wake  # taken before the check: an append after it sets this very event
        if not self.closed and self.cursor >= ring.head:
            wake.wait(timeout)

    # A queue-like view for tests and tools: the next item, None once closed, or queue.Empty.
    def get_nowait(self) -> Item | None:
        """The next frame without blocking; None when the stream was closed and nothing is left."""
        items = self.take(1)
        if items:
            return items[0]
        if self.closed:
            return None
        raise queue.Empty
