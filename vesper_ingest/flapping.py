"""Flapping (docs/events.md#flapping): a subsystem changing state too often is quiet until stable; time is passed in.

Pure and in memory, mirrored by the `alert_flaps` table: each (device, subsystem) keeps the times of
its last `transitions` state changes. The change that makes `transitions` within `window_s` starts
flapping; from then changes are applied but announce nothing, until none came for `window_s`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from shared.severity import worse

Key = tuple[str, str]  # (device_id, subsystem)


@dataclass
class Flap:
    """One subsystem's recent state changes, oldest first, and whether it is flapping."""

    changes: list[float] = field(default_factory=list)
    flapping: bool = False
    quiet: int = 0  # changes not announced while flapping, since this process read it (history counts them)
    worst: str = ""  # the worst state among them (history's episode says it)


class Flaps:
    """Every subsystem's recent changes; `dirty` holds the keys to write (or delete) with the batch."""

    def __init__(self, transitions: int, window_s: float, rows: Iterable[tuple[str, str, list[float], bool]] = ()):
        self.transitions = transitions
        self.window_s = window_s
        self.flaps: dict[Key, Flap] = {(d, s): Flap(list(c), f) for d, s, c, f in rows}
        self.dirty: set[Key] = set()

    def change(self, key: Key, now: float, state: str = "") -> str:
        """Record a state change (to `state`): "started" (it makes it flapping), "quiet" (it already was) or ""."""
        if not self.transitions:
            return ""  # alerts.flap_transitions = 0: flapping is not detected
        flap = self.flaps.setdefault(key, Flap())
        flap.changes = [t for t in flap.changes if t > now - self.window_s][-(self.transitions - 1) :] + [now]
        self.dirty.add(key)
        if flap.flapping:
            flap.quiet, flap.worst = flap.quiet + 1, worse(flap.worst, state)
            return "quiet"
        if len(flap.changes) >= self.transitions:
            flap.flapping = True
            return "started"
        return ""

    def is_flapping(self, key: Key) -> bool:
        """True while the subsystem's changes are not announced."""
        flap = self.flaps.get(key)
        return flap is not None and flap.flapping

    def settle(self, now: float) -> list[tuple[Key, Flap]]:
        """Keys stable for the window now: flapping ones end (returned, with their record); others go."""
        ended = []
        for key, flap in list(self.flaps.items()):
            if flap.changes[-1] <= now - self.window_s:
                if flap.flapping:
                    ended.append((key, flap))
                del self.flaps[key]
                self.dirty.add(key)
        return ended

    def shift(self, step: float) -> None:
        """The ingest's frame was rebased by `step` (vesper_ingest/clock.py): every window keeps its time to go."""
        for key, flap in self.flaps.items():
            flap.changes = [t + step for t in flap.changes]
            self.dirty.add(key)

    def forget(self, device_id: str) -> None:
        """A forgotten device's subsystems start afresh."""
        for key in [key for key in self.flaps if key[0] == device_id]:
            del self.flaps[key]
            self.dirty.add(key)

    def take_dirty(self) -> tuple[list[tuple[str, str, list[float], bool]], list[Key]]:
        """(rows to upsert, keys to delete) since the last take."""
        upserts, deletes = [], []
        for key in self.dirty:
            flap = self.flaps.get(key)
            if flap is None:
                deletes.append(key)
            else:
                upserts.append((*key, flap.changes, flap.flapping))
        self.dirty.clear()
        return upserts, deletes
