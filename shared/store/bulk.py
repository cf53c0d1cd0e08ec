"""Bulk actions' writes (§12): the devices a filter matches, and a tag added to or removed from many at once.

Tags are written through registry.put_entries, the one home of the tag rules (registry.tags, device_tags and
tag_counts kept in step), so a bulk change reads back exactly as the same change made by PATCH or an import.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from shared.store.dialect import Connection
from shared.store.listing import DeviceQuery, list_devices
from shared.store.registry import CHUNK, put_entries


def matching_ids(conn: Connection, query: DeviceQuery, cap: int) -> tuple[list[str], int]:
    """The ids of up to `cap` devices the query's filters match (by id, whatever its sort), and how many match."""
    rows, total = list_devices(conn, dataclasses.replace(query, sort="id", limit=cap, after=None))
    # With q the list's count stops early (listing.COUNT_CAP): the rows read say when more than cap match.
    return [row[0] for row in rows[:cap]], max(total, len(rows))


def _tags_of(conn: Connection, ids: list[str]) -> dict[str, list[str]]:
    """The registry's tags of each device that has an entry (ids without one are left out)."""
    found: dict[str, list[str]] = {}
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        marks = ", ".join("?" * len(chunk))
        rows = conn.execute(f"SELECT device_id, tags FROM registry WHERE device_id IN ({marks})", chunk)
        found.update((device_id, json.loads(tags)) for device_id, tags in rows)
    return found


def add_tag(conn: Connection, ids: list[str], tag: str, max_tags: int, now: float) -> dict[str, int]:
    """Give each device the tag, in the caller's transaction: how many changed, already had it, or had no room.

    A device seen but never registered gets a registry entry holding only the tag (as a PATCH of its tags
    would make); a device already holding `max_tags` tags is left as it is and counted as full.
    """
    current = _tags_of(conn, ids)
    changed: list[tuple[Any, ...]] = []
    had = full = 0
    for device_id in ids:
        tags = current.get(device_id, [])
        if tag in tags:
            had += 1
        elif len(tags) >= max_tags:
            full += 1
        else:
            changed.append((device_id, [*tags, tag]))
    put_entries(conn, ["tags"], changed, now)
    return {"changed": len(changed), "unchanged": had, "full": full}


def remove_tag(conn: Connection, ids: list[str], tag: str, now: float) -> dict[str, int]:
    """Take the tag from each device holding it, in the caller's transaction: how many changed, how many had not it."""
    current = _tags_of(conn, ids)
    changed = [(d, [t for t in tags if t != tag]) for d, tags in current.items() if tag in tags]
    put_entries(conn, ["tags"], changed, now)
    return {"changed": len(changed), "unchanged": len(ids) - len(changed)}
