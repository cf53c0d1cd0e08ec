"""GET /api/events's filters (§12, docs/events.md#reading-the-timeline): the query string's sets, or a 400 naming one.

`type`, `not_type` and `severity` may each be repeated or a comma list; `device`, `site` and `tag` name one each.
"""

from __future__ import annotations

from typing import Any

from flask import abort
from werkzeug.datastructures import MultiDict

from shared.notify_config import SEVERITIES, TAG
from shared.topics import is_valid_device_id
from shared.vocabulary import EVENT_TYPES
from vesper_web.registry_rules import CONTROL, MAX_TEXT

TYPE_LIST = ", ".join(EVENT_TYPES)
MAX_ECHO = 64  # of a refused value in an error


def _values(args: MultiDict[str, str], name: str) -> frozenset[str] | None:
    """Every value of a repeatable, comma-listable parameter (None when absent)."""
    raw = args.getlist(name)
    if not raw:
        return None
    return frozenset(v.strip() for item in raw for v in item.split(",") if v.strip())


def _types(args: MultiDict[str, str], name: str) -> frozenset[str] | None:
    values = _values(args, name)
    unknown = sorted(values - set(EVENT_TYPES)) if values is not None else []
    if unknown:
        abort(400, f"{name}: unknown event type {unknown[0][:MAX_ECHO]!r}; one of {TYPE_LIST}")
    return values


def types(args: MultiDict[str, str]) -> frozenset[str] | None:
    """The types asked for: `type` (or every type) less `not_type`; None when neither is given."""
    wanted, unwanted = _types(args, "type"), _types(args, "not_type")
    if unwanted is None:
        return wanted
    return (wanted if wanted is not None else frozenset(EVENT_TYPES)) - unwanted


def severities(args: MultiDict[str, str]) -> frozenset[str] | None:
    """The severities asked for (None: any)."""
    values = _values(args, "severity")
    if values is not None and not values <= set(SEVERITIES):
        abort(400, f"severity: a comma list (or repeated) of {', '.join(SEVERITIES)}")
    return values


def _one(args: MultiDict[str, str], name: str) -> str | None:
    values = args.getlist(name)
    if len(values) > 1:
        abort(400, f"{name}: give one (the timeline filters by one {name})")
    return values[0] if values else None


def filters(args: MultiDict[str, str]) -> dict[str, Any]:
    """The page's filters as store.Timeline's keywords: types, severities, device, site, tag."""
    device, site, tag = _one(args, "device"), _one(args, "site"), _one(args, "tag")
    if device is not None and not is_valid_device_id(device):
        abort(400, "device: an id of 1-64 characters of A-Z a-z 0-9 _ . : -")
    if site is not None and not (0 < len(site) <= MAX_TEXT["site"] and not CONTROL.search(site)):
        abort(400, f"site: 1 to {MAX_TEXT['site']} characters, without control characters")
    if tag is not None and not TAG.fullmatch(tag):
        abort(400, "tag: one tag, [a-z0-9][a-z0-9_.:-]{0,31}")
    return {"types": types(args), "severities": severities(args), "device": device, "site": site, "tag": tag}
