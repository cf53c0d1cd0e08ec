"""The API description's components of history (§13): episodes, availability, reports; their query parameters.

Each rule is read from its home (history_query, shared.topics, the registry's and lifecycle's rules).
"""

from __future__ import annotations

from typing import Any

from shared.notify_config import TAG
from shared.topics import DEVICE_ID_RE
from vesper_web import device_query, history_query
from vesper_web.history import CSV_COLUMNS
from vesper_web.lifecycle_rules import SUBSYSTEM_MAX
from vesper_web.registry_rules import MAX_TEXT

COUNT = {"type": "integer", "minimum": 0}
SECONDS = {"type": "number", "minimum": 0}
TIME = {"type": "string", "format": "date-time"}
RATIO = {"type": ["number", "null"], "minimum": 0, "maximum": 1, "description": "null: no time counted"}
PLAIN_TEXT = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"  # openapi_schemas.PLAIN_TEXT (not imported: that module is full)
WHEN = {
    "anyOf": [TIME, {"type": "string", "format": "date"}],
    "examples": ["2026-03-01T00:00:00Z", "2026-03-01"],
}


def _object(properties: dict[str, Any], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """An object whose properties are present (but the optional ones)."""
    return {"type": "object", "required": [p for p in properties if p not in optional], "properties": properties}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": schema}


def _limit(default: int, maximum: int, what: str) -> dict[str, Any]:
    return _query("limit", {"type": "integer", "minimum": 1, "maximum": maximum, "default": default}, f"at most {what}")


EPISODE = _object(
    {
        "id": {"type": "integer"},
        "kind": {"enum": list(history_query.KINDS)},
        "device_id": {"type": "string", "description": "a blind stretch's: the ingest's source id"},
        "subsystem": {"type": ["string", "null"], "description": "an incident's; null for an outage"},
        "started": TIME,
        "ended": {**TIME, "type": ["string", "null"], "description": "null while open"},
        "duration_s": {**SECONDS, "description": "to now while open"},
        "worst": {"type": "string", "examples": ["offline", "CRITICAL"]},
        "changes": COUNT,
        "acknowledged": {"type": ["object", "null"], "properties": {"at": TIME, "by": {"type": "string"}}},
        "silenced": {"type": "boolean", "description": "a silence covering it overlapped it"},
        "first_event": {"type": ["integer", "null"]},
        "last_event": {"type": ["integer", "null"]},
    }
)
AVAILABILITY = _object(
    {
        "ratio": RATIO,
        "down_s": SECONDS,
        "counted_s": SECONDS,
        "unknown_s": SECONDS,
        "silenced_s": SECONDS,
        "outages": COUNT,
        "incidents": COUNT,
    }
)
HISTORY = _object(
    {
        "device_id": {"type": "string", "pattern": f"^{DEVICE_ID_RE.pattern}$"},
        "from": TIME,
        "to": TIME,
        "timezone": {"type": "string", "examples": ["Europe/Berlin"]},
        "history_since": {**TIME, "type": ["string", "null"], "description": "before it, history does not know"},
        "availability": AVAILABILITY,
        "periods": _object({name: RATIO for name in ("24h", "7d", "30d", "90d")}),
        "episodes": {"type": "array", "items": _ref("Episode")},
        "truncated": {"type": "boolean", "description": "more episodes overlap the window than listed"},
    },
    optional=("timezone",),
)
FIGURES = {
    "group": {"type": ["string", "null"], "description": "the device, site, tag or day (YYYY-MM-DD in the zone)"},
    "devices": {**COUNT, "description": "devices with a ratio"},
    "availability": {**RATIO, "description": "the mean of the devices' ratios"},
    "under_99": {**COUNT, "description": "devices under 99 %"},
    "outages": COUNT,
    "down_s": SECONDS,
    "mtta_s": {"type": ["number", "null"], "description": "median time to acknowledge its incidents"},
    "mttr_s": {"type": ["number", "null"], "description": "median time to resolve its outages and incidents"},
}
REPORT = _object(
    {
        "from": TIME,
        "to": TIME,
        "timezone": {"type": "string"},
        "group_by": {"enum": list(history_query.GROUPS)},
        "rows": {"type": "array", "items": _object(FIGURES)},
        "fleet": _object(FIGURES),
    }
)
PROBLEMS = _object(
    {
        "subsystems": {
            "type": "array",
            "items": _object(
                {"subsystem": {"type": "string"}, "incidents": COUNT, "devices": COUNT, "problem_s": SECONDS}
            ),
        },
        "devices": {
            "type": "array",
            "items": _object(
                {
                    "device_id": {"type": "string"},
                    "name": {"type": ["string", "null"]},
                    "site": {"type": ["string", "null"]},
                    "incidents": COUNT,
                    "outages": COUNT,
                    "problem_s": SECONDS,
                }
            ),
        },
    }
)
SCHEMAS: dict[str, dict[str, Any]] = {"Episode": EPISODE, "DeviceHistory": HISTORY, "AvailabilityReport": REPORT,
                                      "Problems": PROBLEMS}  # fmt: skip
PARAMETERS: dict[str, dict[str, Any]] = {
    "history_from": _query("from", WHEN, "the window's start (a date: its midnight in history.timezone); "
                           "default: 30 days before to; must be before to"),  # fmt: skip
    "history_to": _query("to", WHEN, "the window's end, at most now (default: now)"),
    "history_device": _query("device", {"type": "string", "pattern": f"^{DEVICE_ID_RE.pattern}$"}, "this device's"),
    "history_site": _query(
        "site",
        {"type": "string", "minLength": 1, "maxLength": MAX_TEXT["site"], "pattern": PLAIN_TEXT},
        "devices of this site",
    ),
    "history_tag": _query("tag", {"type": "string", "pattern": f"^{TAG.pattern}$"}, "devices with this tag"),
    "history_subsystem": _query(
        "subsystem", {"type": "string", "minLength": 1, "maxLength": SUBSYSTEM_MAX}, "incidents of this subsystem"
    ),
    "history_state": _query("state", {"enum": list(history_query.STATES)}, "episodes whose worst was this"),
    "history_open": _query("open", {"enum": list(history_query.BOOLEANS)}, "true: only open; false: only closed"),
    "history_kind": _query("kind", {"enum": list(history_query.KINDS)}, "default: outages and incidents"),
    "history_limit": _limit(history_query.INCIDENTS_LIMIT, device_query.MAX_LIMIT, "this many episodes"),
    "history_cursor": _query("cursor", {"type": "string"}, "the next page, as the Link header gives it"),
    "group_by": _query("group_by", {"enum": list(history_query.GROUPS), "default": "site"}, "a row per group"),
    "history_format": _query(
        "format", {"enum": ["json", "csv"], "default": "json"}, f"csv: the rows, columns {','.join(CSV_COLUMNS)}"
    ),
    "problems_limit": _limit(history_query.PROBLEMS_LIMIT, history_query.MAX_PROBLEMS, "this many of each"),
}


def _json(description: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}, **extra}


RESPONSES: dict[str, dict[str, Any]] = {
    "DeviceHistory": _json("the window's availability, the periods' ending now, its episodes", _ref("DeviceHistory")),
    "Incidents": _json(
        "newest first", {"type": "array", "items": _ref("Episode")}, headers={"Link": "Link"}
    ),
    "AvailabilityReport": {
        "description": "a row per group and the fleet's",
        "content": {
            "application/json": {"schema": _ref("AvailabilityReport")},
            "text/csv": {"schema": {"type": "string"}},
        },
    },
    "Problems": _json("ranked by incidents, then by time in a problem state", _ref("Problems")),
}


def extend(schemas: dict[str, dict[str, Any]], responses: dict[str, dict[str, Any]]) -> None:
    """Add these components to the document's (openapi.describe calls it once per document)."""
    schemas.update(SCHEMAS)
    responses.update(RESPONSES)
