"""The store's outages as the ingest meets them (§16): counted, said once a minute, and a gap in watching noticed.

While the database cannot write (locked, disk full, unreachable) the ingest retries and acknowledges
nothing it has not stored; `vesper_ingest_store_write_failures_total` counts each failed attempt (saved
with the first sweep that commits again), the log says so once a minute with the reason, never a
traceback a second, and the web reports the pipeline not ok once the ingest's last sweep is older than
`web.stale_after_s` (§11). When writes work again, or one took longer than `stall_after_s` (a lock
waited on), or the ingest's own loop stalled that long, the ingest could not watch the fleet: every
device gets a full timeout of grace from then, as after a reconnect (heartbeats may sit unread).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from shared.ratelog import RateLimitedLog
from vesper_ingest.stats import Stats

log = logging.getLogger(__name__)

LOG_EVERY_S = 60.0
WRITE_FAILURES = "store.write_failures"  # vesper_ingest_store_write_failures_total on /metrics
STALLS = "ingest.stalls"  # times the ingest could not watch and every device's grace restarted
PRUNE_FAILURES = "store.prune_failures"


def stall_after_s(sweep_interval_s: float, heartbeat_timeout_s: float) -> float:
    """How long a write or the ingest's loop may take before the ingest counts as stalled.

    Well past a busy machine's slow write, and short enough that a heartbeat left unread that long
    (a device heartbeating at a third of its timeout) could not yet have made it overdue.
    """
    return min(max(5.0, 5 * sweep_interval_s), heartbeat_timeout_s / 3)


class StoreOutage:
    """Failed write attempts: counted, logged once a minute, and when they end, how long they lasted."""

    def __init__(self, stats: Stats, mono: Callable[[], float]) -> None:
        self.stats = stats
        self.mono = mono
        self.failing_since: float | None = None  # monotonic
        self.attempts = 0
        self._log = RateLimitedLog(log, LOG_EVERY_S, mono)

    def failed(self, what: str, reason: object) -> None:
        """One write attempt failed: count it; log at most once a minute what failed and why."""
        self.stats.count(WRITE_FAILURES)
        self.attempts += 1
        if self.failing_since is None:
            self.failing_since = self.mono()
        self._log.warning(
            "store", "database write failed (%s): %s; retrying, and acknowledging nothing not stored", what, reason
        )

    def worked(self) -> bool:
        """A write committed: True if writes were failing (said once, here)."""
        if self.failing_since is None:
            return False
        log.warning("database writes work again after %.1f s (%d failed attempts)",
                    self.mono() - self.failing_since, self.attempts)  # fmt: skip
        self.failing_since, self.attempts = None, 0
        self._log = RateLimitedLog(log, LOG_EVERY_S, self.mono)  # the next outage is said at once
        return True
