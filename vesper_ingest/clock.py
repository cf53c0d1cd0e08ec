"""The ingest's time (SPEC §11 "Clock steps"): deadlines on the monotonic clock, stored times on the wall clock's scale.

`Frame` is the one source of every `now` the ingest stores and compares: monotonic time plus an offset,
so a step of the wall clock (NTP at boot, a VM resumed) moves no deadline by itself. Each sweep asks the
frame how far the wall clock is from it; beyond the tolerance that is a step, and the sweep rebases:
in its transaction it shifts the stored times that deadlines are measured from (devices' last_seen, the
notifier's groups and reminders) by the step, then moves the offset and the in-memory times the same way.
So every silence keeps its elapsed length while stored times follow the corrected wall clock. A gap
within the tolerance (NTP slewing, or the two clocks read a moment apart) is absorbed without a rebase.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

STEP_TOLERANCE_S = 1.0  # a larger gap between the wall clock and the frame is a step, rebased by the sweep


def moved(t: float | None, step: float) -> float | None:
    """A time of the frame after a rebase by `step` (None stays None)."""
    return None if t is None else t + step


class Frame:
    """now = monotonic + offset: the wall clock's scale, a monotonic clock's steadiness."""

    def __init__(
        self,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
        tolerance_s: float = STEP_TOLERANCE_S,
    ) -> None:
        self.wall = wall
        self.mono = mono
        self.tolerance_s = tolerance_s
        self.offset = wall() - mono()
        self.lock = threading.Lock()  # held while the offset moves with a time another thread sets (connected_since)

    def __call__(self) -> float:
        """Now, in the frame."""
        return self.mono() + self.offset

    def step(self) -> float:
        """How far the wall clock stepped from the frame; 0.0 for a gap within the tolerance, absorbed here."""
        gap = self.wall() - self()
        if abs(gap) > self.tolerance_s:
            return gap
        self.offset += gap  # slewing: follow the wall clock by a hair, nothing stored moves
        return 0.0

    def rebase(self, step: float) -> None:
        """Move the frame by a step the sweep has shifted the stored times by (call with `lock` held)."""
        self.offset += step


class Every:
    """A task due every `interval_s` of monotonic time: a step of the wall clock neither skips nor stalls it."""

    def __init__(self, interval_s: float, mono: Callable[[], float], first_in_s: float = 0.0) -> None:
        self.interval_s = interval_s
        self.mono = mono
        self.due_at = mono() + first_in_s

    def wait(self, most_s: float) -> float:
        """Seconds until due, at most `most_s`, never negative."""
        return max(0.0, min(self.due_at - self.mono(), most_s))

    def due(self) -> bool:
        """True when due (the next one is then an interval from now)."""
        now = self.mono()
        if now < self.due_at:
            return False
        self.due_at = now + self.interval_s
        return True

    def again_in(self, seconds: float) -> None:
        """Due again after `seconds` (a failed run retried sooner than its interval)."""
        self.due_at = self.mono() + seconds
