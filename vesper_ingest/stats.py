"""Counters for the ingest, its periodic summary, and rate-limited rejection logging."""

from __future__ import annotations

import logging
from collections import Counter

from shared.ratelog import ONCE, RateLimitedLog

log = logging.getLogger(__name__)

REJECT_LOG_INTERVAL_S = 10.0


class Stats:
    """Counts by name (`messages.alerts`, `rejected.not_json`, `events.alert`, ...)."""

    def __init__(self) -> None:
        self.totals: Counter[str] = Counter()
        self._unsaved: Counter[str] = Counter()
        self._since_summary: Counter[str] = Counter()
        self._reject_log = RateLimitedLog(log, REJECT_LOG_INTERVAL_S)
        self._bad_id_log = RateLimitedLog(log, ONCE)

    def count(self, name: str, n: int = 1) -> None:
        """Add n to a counter."""
        self.totals[name] += n
        self._unsaved[name] += n
        self._since_summary[name] += n

    def take_unsaved(self) -> dict[str, int]:
        """Counts not yet written to the database; clears them."""
        out = dict(self._unsaved)
        self._unsaved.clear()
        return out

    def restore_unsaved(self, deltas: dict[str, int]) -> None:
        """Put back counts whose write failed."""
        self._unsaved.update(deltas)

    def rejected(self, reason: str, detail: str, device_id: str | None, now: float) -> None:
        """Count a rejection; log it at most once per reason per interval, a bad id once."""
        self.count(f"rejected.{reason}")
        if reason == "bad_device_id":
            self._bad_id_log.warning(detail, "rejected message: bad device id %r", detail, now=now)
        else:
            self._reject_log.warning(
                reason, "rejected message: %s %s from device %r", reason, detail, device_id, now=now
            )

    def summary(self) -> str:
        """One line: counts since the last summary, grouped by prefix."""
        groups: dict[str, list[str]] = {}
        for name, value in sorted(self._since_summary.items()):
            prefix, _, rest = name.partition(".")
            groups.setdefault(prefix, []).append(f"{rest or prefix}={value}")
        self._since_summary.clear()
        return "; ".join(f"{prefix}: {' '.join(items)}" for prefix, items in groups.items()) or "idle"
