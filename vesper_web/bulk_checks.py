"""A bulk health check (§12): the same command as one device's, sent to many at a pace, in the background.

The request answers 202 at once; a greenlet of the worker (gevent patches threading) sends one command
per device at `web.bulk_health_checks_per_s`, so neither the broker nor the devices are flooded. Each
device's interval (api.py's Interval, web.health_check_interval_s) still holds: a device checked moments
ago is skipped and counted. If the broker becomes unreachable mid-way the run stops there: what was sent
stays sent, the rest is counted as not sent, and the audit log says so (send again to finish). One run at
a time per worker; a run in progress is lost if its worker stops.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from shared.topics import Topics
from vesper_web.api import HEALTH_CHECK
from vesper_web.ratelimit import Interval

log = logging.getLogger(__name__)
SENT, SKIPPED, FAILED = "sent", "skipped", "failed"


@dataclass
class Run:
    """One run's progress: how many in all, sent, skipped (checked moments ago), not sent (broker away)."""

    total: int
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    done: bool = False

    def summary(self) -> str:
        """The run's counts as the audit line says them."""
        return f"{self.sent} sent, {self.skipped} skipped (checked moments ago), {self.failed} not sent"


def pace(
    run: Run,
    ids: list[str],
    send: Callable[[str], str],
    per_s: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Run:
    """Send to each device in turn, the n-th sent no sooner than n / per_s after the first; stop at a failure."""
    start = clock()
    for n, device_id in enumerate(ids):
        wait = start + run.sent / per_s - clock()
        if wait > 0:
            sleep(wait)
        outcome = send(device_id)
        if outcome == FAILED:
            run.failed = len(ids) - n
            break
        if outcome == SENT:
            run.sent += 1
        else:
            run.skipped += 1
    run.done = True
    return run


class Sender:
    """One device's health check through the worker's bridge, within its interval: sent, skipped or failed."""

    def __init__(self, prefix: str, bridge: object, limit: Interval) -> None:
        self.topics = Topics(prefix)
        self.bridge = bridge
        self.limit = limit

    def __call__(self, device_id: str) -> str:
        """Send it now unless it was sent moments ago."""
        if self.limit.take(device_id, time.monotonic()) > 0:
            return SKIPPED
        if not self.bridge.publish(self.topics.control(device_id), HEALTH_CHECK):  # type: ignore[attr-defined]
            self.limit.release(device_id)
            return FAILED
        return SENT


def start(ids: list[str], send: Callable[[str], str], per_s: float, told: Callable[[Run], None]) -> Run:
    """Begin a run in the background; `told` hears its end (for the audit line). Returns its progress."""
    run = Run(len(ids))

    def work() -> None:
        try:
            pace(run, ids, send, per_s)
        except Exception:  # one boundary: a run never takes its worker down
            log.exception("bulk health check stopped by an error")
            run.failed = run.total - run.sent - run.skipped
            run.done = True
        told(run)

    threading.Thread(target=work, name="bulk-health-check", daemon=True).start()
    return run
