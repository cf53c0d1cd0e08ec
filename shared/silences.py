"""The one home of what a silence covers (§9, §12); the web shows it, the notifier obeys it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Silence:
    """A maintenance window: every matcher that is set must match; none set is the whole fleet.

    `site` matches the registry's site of a device; `device_ids` (a bulk silence's list of the devices a
    filter matched when it was made) is a frozenset, so a notification asks it in constant time.
    """

    id: int
    device_id: str | None
    tag: str | None
    subsystem: str | None
    starts_at: float
    ends_at: float
    comment: str | None = None
    created_by: str = ""
    created_at: float = 0.0
    site: str | None = None
    device_ids: frozenset[str] | None = None

    def active(self, now: float) -> bool:
        """True from its start until its end (the end itself is outside)."""
        return self.starts_at <= now < self.ends_at

    def covers(self, device_id: str, subject: str, tags: set[str], site: str | None = None) -> bool:
        """True for a device's alert of `subject` (a subsystem), or its outage (subject ""), that this silence mutes."""
        return (
            (self.device_id is None or self.device_id == device_id)
            and (self.subsystem is None or self.subsystem == subject)
            and (self.tag is None or self.tag in tags)
            and (self.site is None or self.site == site)
            and (self.device_ids is None or device_id in self.device_ids)
        )

    @property
    def reads_registry(self) -> bool:
        """True when covering needs the device's registry entry (its tags or its site)."""
        return self.tag is not None or self.site is not None


def silenced_until(
    silences: list[Silence], device_id: str, subject: str, tags: set[str], now: float, site: str | None = None
) -> float | None:
    """The latest end among the active silences covering it, or None if it is not silenced now."""
    ends = [s.ends_at for s in silences if s.active(now) and s.covers(device_id, subject, tags, site)]
    return max(ends) if ends else None
