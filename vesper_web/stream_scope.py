"""What a stream client limited to sites receives (§14, docs/security.md#site-limited-tokens): its devices' events and
the monitor's own, live and on resume.

The registry writes no events, so a device joining or leaving the sites is noticed by re-reading the sites'
device ids at most every REFRESH_S: one indexed read per set of sites per worker, shared by every stream
limited to the same sites. Unlimited streams never come here.
"""

from __future__ import annotations

import logging
import time
from contextlib import closing
from pathlib import Path
from typing import Any

from shared import store
from shared.store import scope
from shared.store.dialect import TRANSIENT

log = logging.getLogger(__name__)
REFRESH_S = 10.0  # a device moved into or out of the sites is followed within this long
_known: dict[tuple[str, tuple[str, ...]], tuple[float, frozenset[str]]] = {}  # (target, sites) -> (read at, ids)


def device_ids(target: str | Path, sites: tuple[str, ...], now: float | None = None) -> frozenset[str]:
    """The sites' device ids, read again when older than REFRESH_S (the last read kept while the store is away)."""
    key = (str(target), sites)
    now = time.monotonic() if now is None else now
    found = _known.get(key)
    if found is not None and now - found[0] < REFRESH_S:
        return found[1]
    try:
        with closing(store.connect(target, readonly=True, pooled=True)) as conn:
            ids = scope.device_ids(conn, sites)
    except TRANSIENT as exc:
        log.warning("cannot read the devices of a site-limited stream (%s); read again in %g s", exc, REFRESH_S)
        ids = found[1] if found is not None else frozenset()  # nothing rather than another site's
    _known[key] = (now, ids)
    return ids


class SiteFilter:
    """One site-limited stream's filter: which stored events (catch-up) and ring items (live) it may send."""

    def __init__(self, target: str | Path, sites: tuple[str, ...]) -> None:
        self.target = target
        self.sites = sites

    def ids(self) -> frozenset[str]:
        """Its devices' ids now."""
        return device_ids(self.target, self.sites)

    def event(self, event: dict[str, Any]) -> bool:
        """A stored event (wire form) it may send: one of its devices', or the monitor's own."""
        return event["type"] in scope.MONITOR_TYPES or event["source_id"] in self.ids()
