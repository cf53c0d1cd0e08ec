"""GET /api/events's filters in the API description (§12): read from their homes (event_query, the vocabulary)."""

from __future__ import annotations

from typing import Any

from shared.notify_config import SEVERITIES, TAG
from shared.vocabulary import EVENT_TYPES
from vesper_web.openapi_schemas import PLAIN_TEXT
from vesper_web.registry_rules import MAX_TEXT

ID = {"type": "integer", "minimum": 1, "maximum": 10**18 - 1}  # api.INTEGER: up to 18 digits
TYPES = {"type": "array", "items": {"enum": list(EVENT_TYPES)}, "uniqueItems": True}
LISTED = "repeatable, or a comma list"


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": schema}


EVENT_PARAMETERS: dict[str, dict[str, Any]] = {
    "before": _query("before", ID, "only events older than this id; without `after`: the newest of them (paging back)"),
    "event_type": _query("type", TYPES, f"only events of these types ({LISTED})"),
    "not_type": _query("not_type", TYPES, f"no events of these types ({LISTED}): the console hides playback so"),
    "event_severity": _query(
        "severity", {"type": "array", "items": {"enum": list(SEVERITIES)}, "uniqueItems": True},
        f"only events of these severities ({LISTED})",
    ),
    "event_site": _query(
        "site", {"type": "string", "minLength": 1, "maxLength": MAX_TEXT["site"], "pattern": PLAIN_TEXT},
        "only events of devices registered at exactly this site",
    ),
    "event_tag": _query(
        "tag", {"type": "string", "pattern": f"^{TAG.pattern}$"}, "only events of devices with this tag"
    ),
}  # fmt: skip
