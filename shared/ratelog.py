"""One rate-limited logger for everything a device, a client or the network can make us repeat."""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

MAX_KEYS = 10_000  # keys remembered; past that, lines for new keys are held back (a flood of new ids)
ONCE = math.inf  # an interval meaning: once per key, ever


class RateLimitedLog:
    """At most one line per key per interval; the next line says how many were held back since."""

    def __init__(
        self, logger: logging.Logger, interval_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self.clock = clock
        self._last: dict[str, float] = {}
        self._held: Counter[str] = Counter()

    def log(self, level: int, key: str, msg: str, *args: Any, now: float | None = None, force: bool = False) -> bool:
        """Log unless a line of this key went out within the interval (`force`: log anyway); True if logged."""
        now = self.clock() if now is None else now
        last = self._last.get(key)
        if not force and last is not None and now - last < self.interval_s:
            self._held[key] += 1
            return False
        if last is None and len(self._last) >= MAX_KEYS:
            return False
        self._last[key] = now
        held = self._held.pop(key, 0)
        if held:
            msg, args = msg + " (+%d more since)", (*args, held)
        self.logger.log(level, msg, *args)
        return True

    def warning(self, key: str, msg: str, *args: Any, now: float | None = None, force: bool = False) -> bool:
        """log() at WARNING."""
        return self.log(logging.WARNING, key, msg, *args, now=now, force=force)
