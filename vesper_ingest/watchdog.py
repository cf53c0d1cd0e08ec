"""The push check outside (SPEC §11): a GET to notify.watchdog_url while the ingest leads, sees and sweeps."""

from __future__ import annotations

import logging
import threading
import time
import urllib.request
from collections.abc import Callable

from shared.ratelog import RateLimitedLog

log = logging.getLogger(__name__)
TIMEOUT_S = 10.0
FAIL_LOG_INTERVAL_S = 300.0


class Watchdog:
    """A thread that pings every interval while `seeing()` says the ingest is well; silence is the alarm."""

    def __init__(self, url: str, interval_s: float, seeing: Callable[[], bool]) -> None:
        self.url = url
        self.interval_s = interval_s
        self.seeing = seeing
        self.stopping = threading.Event()
        self.pings = 0
        self._fail_log = RateLimitedLog(log, FAIL_LOG_INTERVAL_S)
        self._thread = threading.Thread(target=self._run, name="vesper-watchdog", daemon=True)

    def start(self) -> None:
        """Begin pinging (the first as soon as the ingest sees); nothing without a URL."""
        if not self.url:
            return
        log.info("watchdog: a GET every %.0f s while the ingest sees", self.interval_s)
        self._thread.start()

    def stop(self) -> None:
        """End the thread; a ping in flight is abandoned (its timeout bounds the wait)."""
        self.stopping.set()
        if self._thread.is_alive():
            self._thread.join(TIMEOUT_S + 1)

    def _run(self) -> None:
        due = time.monotonic()
        while not self.stopping.wait(max(0.0, min(due - time.monotonic(), 1.0))):
            if time.monotonic() >= due and self.seeing():
                self.ping()
                due = time.monotonic() + self.interval_s

    def ping(self) -> bool:
        """One GET; a failure is logged (rate-limited) and never raised."""
        try:
            with urllib.request.urlopen(self.url, timeout=TIMEOUT_S) as answer:  # noqa: S310 (an http(s) URL, checked)
                answer.read(1024)
            self.pings += 1
            return True
        except Exception as exc:  # any failure of a far end must not stop the pings
            self._fail_log.warning("ping", "watchdog ping failed: %s", exc)
            return False
