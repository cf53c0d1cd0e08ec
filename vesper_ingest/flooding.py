"""One device cannot flood the timeline (docs/events.md#flooding): past a rate its events are held back; time passed in.

Pure and in memory. Each device keeps the times of its last `limit` events within `window_s` (a sliding
minute); the event that would be one more starts a flood: it becomes one `device_flooding`, and every
later one is suppressed (the current state still changes: only events are held back). A flooding device
keeps the times of its last `limit` + 1 would-be events; once the oldest of them is a minute old, the last
minute held no more than `limit`, and the sweep ends the flood. Only the flooding devices are mirrored (in
`meta`, written with the batch: each one's latest would-be event and count), so a rollback, a restart or a
standby taking over neither forgets a flood nor announces it twice (it then ends a minute after that latest
event: never sooner than it would have); the other devices' windows start afresh then.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from shared.events import NewEvent
from shared.vocabulary import EVENT_TYPES

META = "flooding"  # meta key: {device_id: [latest would-be event, suppressed]} of the devices flooding now
WINDOW_S = 60  # seconds
EXEMPT = frozenset(name for name, t in EVENT_TYPES.items() if t.liveness)  # liveness is never held back


@dataclass
class Flood:
    """A flooding device: the times of its last `limit` + 1 would-be events, and how many it made in all."""

    times: deque[float]
    suppressed: int = 0


class Floods:
    """Every device's recent events; `dirty` when the flooding ones changed and are to be written."""

    def __init__(self, limit: int, window_s: float = WINDOW_S, saved: str | None = None) -> None:
        self.limit = limit
        self.window_s = window_s
        self.recent: dict[str, deque[float]] = {}
        self.flooding: dict[str, Flood] = _load(saved, limit + 1)
        self.dirty = False
        self.unreported = 0  # suppressed and not yet counted (alerts.flood_suppressed)
        self._pruned_at: float | None = None

    def admit(self, device_id: str, now: float) -> str:
        """One would-be event: "" (store it), "started" (one device_flooding instead) or "quiet" (store nothing)."""
        flood = self.flooding.get(device_id)
        if flood is None:
            times = self.recent.setdefault(device_id, deque(maxlen=self.limit))
            while times and times[0] <= now - self.window_s:
                times.popleft()
            if len(times) < self.limit:
                times.append(now)
                return ""
            flood = self.flooding[device_id] = Flood(deque(self.recent.pop(device_id), maxlen=self.limit + 1))
        flood.times.append(now)
        flood.suppressed += 1
        self.unreported += 1
        self.dirty = True
        return "started" if flood.suppressed == 1 else "quiet"

    def settle(self, now: float) -> list[tuple[str, int]]:
        """(device, suppressed) of each flood whose last minute held at most `limit`; an idle window is dropped."""
        ended = [(d, flood.suppressed) for d, flood in self.flooding.items() if flood.times[0] <= now - self.window_s]
        for device_id, _ in ended:
            del self.flooding[device_id]
            self.dirty = True
        if self._pruned_at is None or now - self._pruned_at >= self.window_s:  # a sweep each second: a scan a minute
            self._pruned_at = now
            for device_id in [d for d, times in self.recent.items() if not times or times[-1] <= now - self.window_s]:
                del self.recent[device_id]
        return ended

    def take_unreported(self) -> int:
        """How many were suppressed since the last take."""
        taken, self.unreported = self.unreported, 0
        return taken

    def shift(self, step: float) -> None:
        """The ingest's frame was rebased by `step` (vesper_ingest/clock.py): every window keeps its time to go."""
        self.recent = {d: deque((t + step for t in times), maxlen=self.limit) for d, times in self.recent.items()}
        for flood in self.flooding.values():
            flood.times = deque((t + step for t in flood.times), maxlen=self.limit + 1)
        self.dirty = self.dirty or bool(self.flooding)
        self._pruned_at = None

    def forget(self, device_id: str) -> None:
        """A forgotten device starts afresh."""
        self.recent.pop(device_id, None)
        if self.flooding.pop(device_id, None) is not None:
            self.dirty = True

    def take_saved(self) -> str:
        """The flooding devices as the meta value to write; clears `dirty`."""
        self.dirty = False
        return json.dumps({d: [flood.times[-1], flood.suppressed] for d, flood in self.flooding.items()})


def _load(saved: str | None, keep: int) -> dict[str, Flood]:
    """The flooding devices from their meta value, as if their last `keep` came at the latest (unreadable: none)."""
    try:
        rows = json.loads(saved or "{}")
        return {str(d): Flood(deque([float(t)] * keep, maxlen=keep), int(n)) for d, (t, n) in rows.items()}
    except (ValueError, TypeError, AttributeError):
        return {}


def limited(floods: Floods, events: list[NewEvent], now: float) -> list[NewEvent]:
    """The events their devices may still make, in order; a device_flooding in place of the one starting a flood."""
    kept = []
    for event in events:
        verdict = "" if event.type in EXEMPT else floods.admit(event.source_id, now)
        if not verdict:
            kept.append(event)
        elif verdict == "started":
            payload = {"limit": floods.limit, "window_s": floods.window_s}
            kept.append(NewEvent("device_flooding", event.source_id, payload, "warning"))
    return kept


def ended(floods: Floods, now: float, alerts_of: Callable[[str], dict[str, str]]) -> list[NewEvent]:
    """A device_flooding_ended for each flood over, naming how many were held back and its active alerts now."""
    return [
        NewEvent("device_flooding_ended", device_id, {"suppressed": n, "alerts": alerts_of(device_id)})
        for device_id, n in floods.settle(now)
    ]
