"""Pure liveness rules (docs/events.md#liveness): time is always a parameter, never read here."""

from __future__ import annotations


def sweep_cutoff(now: float, timeout: float, connected_since: float | None) -> float | None:
    """The last_seen before which a device is overdue now; None while disconnected or in grace.

    A device is overdue when now >= max(last_seen, connected_since) + timeout: every
    (re)connect gives each device a full timeout of grace, so an outage never cries wolf. The
    sweep applies that to every row in one statement (shared/store/writes.py MARK_OVERDUE).
    """
    if connected_since is None or now < connected_since + timeout:
        return None
    return now - timeout


def announces_online(before: str | None) -> bool:
    """Only offline -> online is announced; a first appearance or unknown -> online is not."""
    return before == "offline"
