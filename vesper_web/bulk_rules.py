"""A bulk action's request body (§12), checked without I/O: a 400 names the field and its rule.

The filter is the device list's (device_query.py reads it, as it reads the list's query string); the
silence's own fields are lifecycle_rules.silence's, so a bulk silence and a single one obey one rule.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from flask import abort
from werkzeug.datastructures import MultiDict

from shared import store
from shared.notify_config import TAG
from vesper_web import lifecycle_rules
from vesper_web.registry_rules import MAX_ECHO

ACTIONS = ("silence", "health_check", "add_tag", "remove_tag")
SILENCE_FIELDS = ("starts_at", "ends_at", "duration_s", "comment", "subsystem")
ACTION_FIELDS: dict[str, tuple[str, ...]] = {
    "silence": SILENCE_FIELDS,
    "health_check": (),
    "add_tag": ("tag",),
    "remove_tag": ("tag",),
}
COMMON_FIELDS = ("filter", "action", "dry_run")
# The list's filters, as DeviceQuery holds them (tags is asked as tag); its order and paging are not filters.
FILTER_KEYS = tuple(
    "tag" if f.name == "tags" else f.name
    for f in dataclasses.fields(store.DeviceQuery)
    if f.name not in ("sort", "limit", "after", "sites")  # sites: the caller's limit (§14), never the client's
)
LISTS = ("tag", "health")  # the filters that may hold several values (health: any of them)


@dataclass(frozen=True)
class BulkRequest:
    """A checked bulk request: the filter as device_query.parse takes it, the action and its own fields."""

    filter: MultiDict[str, str]
    given: dict[str, Any]  # the filter as the client sent it (for the audit line)
    action: str
    dry_run: bool
    fields: dict[str, Any]


def _values(key: str, value: Any) -> list[str]:
    """One filter's values: a string, or for tag and health a list of strings; empty ones dropped."""
    if isinstance(value, str):
        return [value] if value else []
    if key in LISTS and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v for v in value if v]
    kind = "a string or a list of strings" if key in LISTS else "a string"
    abort(400, f"filter.{key}: {kind}")


def parse_filter(value: Any) -> MultiDict[str, str]:
    """The filter object as the list's query arguments (health joined as its comma list), or a 400."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        abort(400, f"filter: an object of any of {', '.join(FILTER_KEYS)}")
    unknown = sorted(str(key) for key in value if key not in FILTER_KEYS)
    if unknown:
        abort(400, f"filter.{unknown[0][:MAX_ECHO]}: unknown filter; the filters are {', '.join(FILTER_KEYS)}")
    args: MultiDict[str, str] = MultiDict()
    for key, raw in value.items():
        values = _values(key, raw)
        if key == "health" and values:
            args.add(key, ",".join(values))
        for one in values if key != "health" else ():
            args.add(key, one)
    return args


def silence_matchers(args: MultiDict[str, str]) -> dict[str, str] | None:
    """A silence that follows the filter: only one tag -> that tag, only a site -> that site; else None (a list)."""
    keys = list(args.keys())
    if keys == ["tag"] and len(args.getlist("tag")) == 1:
        return {"tag": args["tag"]}
    if keys == ["site"]:
        return {"site": args["site"]}
    return None


def _action_fields(action: str, body: dict[str, Any], now: float) -> dict[str, Any]:
    """The action's own fields, checked: a silence's by lifecycle_rules, a tag by the registry's tag rule."""
    if action == "silence":
        own = {key: body[key] for key in SILENCE_FIELDS if key in body}
        fields = lifecycle_rules.silence(json.dumps(own).encode(), now)
        return {key: value for key, value in fields.items() if key not in ("device_id", "tag")}
    if action in ("add_tag", "remove_tag"):
        tag = body.get("tag")
        if not (isinstance(tag, str) and TAG.fullmatch(tag)):
            abort(400, "tag: the tag to add or remove, [a-z0-9][a-z0-9_.:-]{0,31}")
        return {"tag": tag}
    return {}


def parse(raw: bytes, now: float) -> BulkRequest:
    """A bulk request's body checked field by field, or a 400 naming the field."""
    body = lifecycle_rules.json_body(raw, holding="filter and action")
    action = body.get("action")
    if action not in ACTIONS:
        abort(400, f"action: one of {', '.join(ACTIONS)}")
    allowed = (*COMMON_FIELDS, *ACTION_FIELDS[action])
    unknown = sorted(str(key) for key in body if key not in allowed)
    if unknown:
        abort(400, f"{unknown[0][:MAX_ECHO]}: unknown field for {action} (the fields are {', '.join(allowed)})")
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        abort(400, "dry_run: true or false")
    given = body.get("filter")
    return BulkRequest(parse_filter(given), given or {}, action, dry_run, _action_fields(action, body, now))
