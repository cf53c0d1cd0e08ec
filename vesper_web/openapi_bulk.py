"""The API description's components of bulk actions (§12), beside openapi_schemas.py's (full at 300 lines).

Each rule is read from its home (bulk_rules, lifecycle_rules, device_query, registry_rules).
"""

from __future__ import annotations

from typing import Any

from shared.notify_config import TAG
from vesper_web import bulk_rules, device_query, lifecycle_rules, registry_rules

COUNT = {"type": "integer", "minimum": 0}
TIME = {"type": "string", "format": "date-time"}
_TAG = {"type": "string", "pattern": f"^{TAG.pattern}$", "examples": ["north"]}
_TEXT = {"type": "string", "maxLength": registry_rules.MAX_TEXT["site"]}
FILTER_VALUES: dict[str, dict[str, Any]] = {
    "q": {"type": "string", "maxLength": device_query.MAX_Q},
    "health": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
    "tag": {"oneOf": [_TAG, {"type": "array", "maxItems": device_query.MAX_FILTER_TAGS, "items": _TAG}]},
    "site": _TEXT,
}
FILTER = {
    "type": "object",
    "description": "the device list's filters (GET /api/devices); none: every device",
    "properties": {key: FILTER_VALUES.get(key, {"type": "string"}) for key in bulk_rules.FILTER_KEYS},
    "additionalProperties": False,
}
REQUEST = {
    "type": "object",
    "required": ["action"],
    "properties": {
        "filter": FILTER,
        "action": {"enum": list(bulk_rules.ACTIONS)},
        "dry_run": {"type": "boolean", "default": False, "description": "answer the count, do nothing"},
        "tag": {**_TAG, "description": "add_tag, remove_tag: the tag"},
        "duration_s": {"type": "number", "exclusiveMinimum": 0, "maximum": lifecycle_rules.MAX_SILENCE_S},
        "ends_at": TIME,
        "starts_at": TIME,
        "comment": {"type": ["string", "null"], "maxLength": lifecycle_rules.MAX_NOTE},
        "subsystem": {"type": "string", "minLength": 1, "maxLength": lifecycle_rules.SUBSYSTEM_MAX},
    },
    "additionalProperties": False,
    "examples": [{"filter": {"site": "North campus"}, "action": "silence", "duration_s": 3600, "comment": "works"}],
}
RESULT = {
    "type": "object",
    "required": ["action", "matched", "count"],
    "properties": {
        "action": {"enum": list(bulk_rules.ACTIONS)},
        "matched": {**COUNT, "description": "devices the filter matched"},
        "count": {**COUNT, "description": "devices acted on (a tag: those changed)"},
        "dry_run": {"type": "boolean"},
        "max": {**COUNT, "description": "web.bulk_max"},
        "unchanged": {**COUNT, "description": "a tag: devices that already had it (add) or lacked it (remove)"},
        "full": {**COUNT, "description": "add_tag: devices left as they are, at the most tags"},
        "per_s": {"type": "number", "description": "health_check: the pace"},
        "eta_s": {"type": "number", "description": "health_check: seconds until the last is sent"},
        "silence": {"$ref": "#/components/schemas/Silence"},
    },
}
SCHEMAS: dict[str, dict[str, Any]] = {"BulkRequest": REQUEST, "BulkResult": RESULT}
# Added to openapi_schemas' Silence: a bulk silence's matchers.
SILENCE_PROPERTIES = {
    "site": {"type": ["string", "null"], "description": "devices of this site"},
    "device_count": {"type": ["integer", "null"], "minimum": 0, "description": "a bulk silence's list of devices"},
}


def _json(description: str) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/BulkResult"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


RESPONSES: dict[str, dict[str, Any]] = {
    "BulkDone": _json("done (or with dry_run, only counted); count says how many devices it changed"),
    "BulkSilenced": _json("the silence made; count is the devices it covers now"),
    "BulkQueued": _json("health checks under way at the configured pace; count is the devices to be sent one"),
    "BulkRunning": {
        "description": "a bulk health check of this worker is still under way",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    },
}


def extend(schemas: dict[str, dict[str, Any]], responses: dict[str, dict[str, Any]]) -> None:
    """Add these components to the document's (openapi.describe calls it once per document)."""
    schemas.update(SCHEMAS)
    silence = schemas["Silence"]
    schemas["Silence"] = {**silence, "properties": {**silence["properties"], **SILENCE_PROPERTIES}}
    responses.update(RESPONSES)
