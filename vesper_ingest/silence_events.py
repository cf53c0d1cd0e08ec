"""Operator silences as events (§12, docs/events.md#silence-events): silence_created, silence_ended, in the sweep.

The web keeps the silences table; the ingest, the one writer of events, tells of each silence once it
is made and once it is over, and records how far it told in the same transaction (store.mark_told).
"""

from __future__ import annotations

from typing import Any

from shared import store
from shared.events import NewEvent, iso
from shared.store.silence_told import CREATED, ENDED, Untold

PER_SWEEP = 100  # silences told per sweep at most: an old database's backlog goes over several sweeps
SHOWN_IDS = 3  # of a bulk silence's device list, never the whole list (it may hold 10,000)


def matchers(silence: Untold) -> dict[str, Any]:
    """The silence's set matchers; a device list as its count and first few ids ({}: the whole fleet)."""
    found: dict[str, Any] = {
        name: value
        for name, value in (("device_id", silence.device_id), ("tag", silence.tag),
                            ("subsystem", silence.subsystem), ("site", silence.site))
        if value is not None
    }  # fmt: skip
    if silence.device_ids is not None:
        found["device_count"] = len(silence.device_ids)
        found["device_ids"] = list(silence.device_ids[:SHOWN_IDS])
    return found


def scope(found: dict[str, Any]) -> str:
    """The matchers in words: "device bell-7, subsystem Audio", "12 devices (a, b, c, …)", "the whole fleet"."""
    words = [f"{name} {found[key]}" for key, name in (("device_id", "device"), ("site", "site"), ("tag", "tag"))
             if key in found]  # fmt: skip
    if "device_count" in found:
        more = ", …" if found["device_count"] > len(found["device_ids"]) else ""
        words.append(f"{found['device_count']} devices ({', '.join(found['device_ids'])}{more})")
    if "subsystem" in found:
        words.append(f"subsystem {found['subsystem']}")
    return ", ".join(words) or "the whole fleet"


def source_of(silence: Untold) -> str:
    """The event's source_id: the device of a one-device silence, else `silence:{id}` (no device's by accident)."""
    if silence.device_id is not None:
        return silence.device_id
    if silence.device_ids is not None and len(silence.device_ids) == 1:
        return silence.device_ids[0]
    return f"silence:{silence.id}"


def told(silence: Untold, now: float) -> tuple[list[NewEvent], int]:
    """What is still to tell of one silence at `now` (created, then ended), and how far it is told then."""
    found = matchers(silence)
    base = {"id": silence.id, "matchers": found, "scope": scope(found), "ends_at": iso(silence.ends_at)}
    source, events, level = source_of(silence), [], silence.told
    if level < CREATED:
        events.append(NewEvent("silence_created", source, {**base, "by": silence.created_by,
                                                           "comment": silence.comment}))  # fmt: skip
        level = CREATED
    if silence.ends_at <= now:
        events.append(NewEvent("silence_ended", source, {**base, "by": silence.ended_by, "comment": silence.comment}))
        level = ENDED
    return events, level


def tell(conn: store.Connection, now: float) -> list[NewEvent]:
    """In the sweep's transaction: the events of the silences not yet told, recording that they now are."""
    events: list[NewEvent] = []
    levels: dict[int, int] = {}
    for silence in store.untold_silences(conn, now, PER_SWEEP):
        more, levels[silence.id] = told(silence, now)
        events += more
    store.mark_told(conn, levels)
    return events
