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
_ANY_TAG = {"anyOf": [_TAG, {"const": ""}]}  # "" in a filter: no filter (as in the list's query string)
_TEXT = {"type": "string", "maxLength": registry_rules.MAX_TEXT["site"]}
FILTER_VALUES: dict[str, dict[str, Any]] = {
    "q": {"type": "string", "maxLength": device_query.MAX_Q},
    "health": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
    "tag": {"anyOf": [_ANY_TAG, {"type": "array", "maxItems": device_query.MAX_FILTER_TAGS, "items": _ANY_TAG}]},
    "site": _TEXT,
}
FILTER = {
    "type": ["object", "null"],
    "description": "the device list's filters (GET /api/devices); none: every device",
    "properties": {key: FILTER_VALUES.get(key, {"type": "string"}) for key in bulk_rules.FILTER_KEYS},
    "additionalProperties": False,
}
OWN: dict[str, dict[str, Any]] = {  # each action's own fields (bulk_rules.ACTION_FIELDS)
    "tag": {**_TAG, "description": "the tag to add or remove"},
    "duration_s": {"type": "number", "exclusiveMinimum": 0, "maximum": lifecycle_rules.MAX_SILENCE_S},
    "ends_at": TIME,
    "starts_at": TIME,
    "comment": {"type": ["string", "null"], "maxLength": lifecycle_rules.MAX_NOTE},
    "subsystem": {"type": "string", "minLength": 1, "maxLength": lifecycle_rules.SUBSYSTEM_MAX},
}


def _variant(action: str) -> dict[str, Any]:
    """One action's body: the common fields and its own, nothing else."""
    own = bulk_rules.ACTION_FIELDS[action]
    return {
        "type": "object",
        "required": ["action", *(["tag"] if "tag" in own else [])],
        "properties": {
            "filter": FILTER,
            "action": {"const": action},
            "dry_run": {"type": "boolean", "default": False, "description": "answer the count, do nothing"},
            **{field: OWN[field] for field in own},
        },
        "additionalProperties": False,
    }


REQUEST = {
    "oneOf": [_variant(action) for action in bulk_rules.ACTIONS],
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
