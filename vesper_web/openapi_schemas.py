"""The API description's components (§7), written once: schemas, parameters, headers, responses, auth.

Each rule is read from its home (registry_rules, device_query, shared.severity, shared.topics)
rather than restated, so the document changes with the code it describes.
"""

from __future__ import annotations

from typing import Any

from shared import accounts, store
from shared.notify_config import CHANNEL_NAME, SEVERITIES, TAG
from shared.severity import ALERT_STATES_BY_RANK, HEALTH_ORDER
from shared.topics import DEVICE_ID_RE
from vesper_web import device_query, lifecycle_rules, registry_rules
from vesper_web.api import MAX_LIMIT
from vesper_web.notifications import MAX_LIMIT as MAX_NOTIFICATIONS

ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js")  # the files of Swagger UI that /api/docs loads
PLAIN_TEXT = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"  # registry_rules.CONTROL's complement (tested), in ECMA syntax
MAX_INTEGER = 10**18 - 1  # api.INTEGER: up to 18 digits


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "type": [schema["type"], "null"]}


def _text(limit: int, *examples: str) -> dict[str, Any]:
    schema = {"type": "string", "maxLength": limit, "pattern": PLAIN_TEXT}
    return {**schema, "examples": list(examples)} if examples else schema


def _json(description: str, schema: str | dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}, **extra}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An object whose every property is present."""
    return {"type": "object", "required": list(properties), "properties": properties, **extra}


TIME = {"type": "string", "format": "date-time"}
COUNT = {"type": "integer", "minimum": 0}
COUNTS = {"type": "object", "additionalProperties": COUNT}
TAG_SCHEMA = {"type": "string", "pattern": f"^{TAG.pattern}$", "examples": ["north"]}
TAGS_SCHEMA = {"type": "array", "maxItems": registry_rules.MAX_TAGS, "uniqueItems": True, "items": TAG_SCHEMA}
TIMEOUT = {"type": "number", "exclusiveMinimum": 0, "maximum": registry_rules.MAX_TIMEOUT_S, "examples": [120]}
REGISTRY = {
    "name": _nullable(_text(registry_rules.MAX_TEXT["name"], "North tower")),
    "site": _nullable(_text(registry_rules.MAX_TEXT["site"], "St Mary's")),
    "tags": TAGS_SCHEMA,
    "notes": _nullable(_text(registry_rules.MAX_TEXT["notes"], "Key at the vestry")),
    "heartbeat_timeout_s": _nullable(TIMEOUT),
}
ALERT = _object(
    {
        "subsystem": {"type": "string", "examples": ["Motor"]},
        "state": {"enum": list(ALERT_STATES_BY_RANK)},
        "message": {"type": ["string", "null"], "examples": ["Clapper stalled"]},
        "updated_at": TIME,
    },
    additionalProperties=False,  # §5: exactly these four
)
DEVICE_ID_SCHEMA = {"type": "string", "pattern": f"^{DEVICE_ID_RE.pattern}$", "examples": ["bell-1"]}
ACKNOWLEDGED = _object({"by": {"type": "string"}, "at": TIME, "note": {"type": ["string", "null"]}})
LIFECYCLE = {  # §9: the device page's alert objects add these to the four
    "acknowledged": _nullable(ACKNOWLEDGED),
    "flapping": {"type": "boolean"},
    "confirmed": {"type": "boolean", "description": "false while the device is offline"},
    "unconfirmed_since": _nullable(TIME),
    "silenced_until": _nullable(TIME),
}
SUMMARY_TOPS = {n: s for t in ("tags", "sites", "firmware") for n, s in ((t, COUNTS), (f"{t}_total", COUNT))}
MARKED = ("acknowledged", "silenced", "flapping", "unconfirmed")  # §12: counts of its alerts (flapping: subsystems)
MARKERS = _object({**dict.fromkeys(MARKED, COUNT), "silenced_until": _nullable(TIME)})
DEVICE = _object(
    {
        "id": DEVICE_ID_SCHEMA,
        "health": {"enum": list(HEALTH_ORDER)},
        "liveness": {"enum": ["online", "offline", "unknown"]},
        "liveness_as_of": {**_nullable(TIME), "description": "while the ingest cannot see: the time liveness is from"},
        "first_seen": _nullable(TIME),
        "last_seen": _nullable(TIME),
        "playback": _object(
            {"active": {"type": "boolean"}, "melody_uid": {"type": ["string", "null"], "examples": ["ABC123"]}}
        ),
        "active_alerts": COUNT,
        "last_heartbeat": {"type": ["object", "null"], "description": "the device's last heartbeat payload"},
        **REGISTRY,
        "firmware": {**_nullable(_text(device_query.MAX_FIRMWARE)), "description": "devices.firmware_key's value"},
    }
)
DEVICE["properties"]["markers"] = _nullable(MARKERS)  # §12 (null where not read: not required)
STATUS = _object(  # §11: can the console see
    {
        "ok": {"type": "boolean"},
        "problems": {"type": "array", "items": {"type": "string"}, "description": "each one plain sentence"},
        "ingest": _nullable(
            _object(
                {
                    "last_sweep_at": TIME,
                    "broker_connected": {"type": "boolean"},
                    "name": {"type": ["string", "null"]},
                    "version": {"type": ["string", "null"]},
                }
            )
            | {"description": "also connected_since or disconnected_since"}
        ),
        "bridge": _nullable(_object({"connected": {"type": "boolean"}, "since": _nullable(TIME)})),
        "data_as_of": _nullable(TIME),
        "liveness_as_of": _nullable(TIME),
    }
)
SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": _object({"error": {"type": "string"}}),
    "Status": STATUS,
    "Device": DEVICE,
    "Alert": ALERT,
    "AlertDetail": _object({**ALERT["properties"], **LIFECYCLE}, additionalProperties=False),
    "DeviceDetail": {"allOf": [_ref("Device"), _object({"alerts": {"type": "array", "items": _ref("AlertDetail")}})]},
    "AckRequest": _object(
        {"note": _nullable(_text(lifecycle_rules.MAX_NOTE, "on my way"))}, required=[], additionalProperties=False
    ),
    "SilenceRequest": _object(
        {
            "device": DEVICE_ID_SCHEMA,
            "tag": TAG_SCHEMA,
            "subsystem": {"type": "string", "minLength": 1, "maxLength": lifecycle_rules.SUBSYSTEM_MAX},
            "starts_at": TIME,
            "ends_at": TIME,
            "duration_s": {"type": "number", "exclusiveMinimum": 0, "maximum": lifecycle_rules.MAX_SILENCE_S},
            "comment": _nullable(_text(lifecycle_rules.MAX_NOTE, "servicing the north tower")),
        },
        required=[],
        oneOf=[{"required": ["ends_at"]}, {"required": ["duration_s"]}],
        additionalProperties=False,
    ),
    "Silence": _object(
        {
            "id": {"type": "integer"},
            "device": _nullable(DEVICE_ID_SCHEMA),
            "tag": _nullable(TAG_SCHEMA),
            "subsystem": {"type": ["string", "null"]},
            "starts_at": TIME,
            "ends_at": TIME,
            "comment": {"type": ["string", "null"]},
            "created_by": {"type": "string"},
            "created_at": TIME,
        }
    ),
    "Event": _object(
        {
            "id": {"type": "integer", "minimum": 1},
            "ts": TIME,
            "type": {"type": "string", "examples": ["alert", "device_offline"]},
            "severity": {"enum": list(SEVERITIES)},
            "source_id": {"type": "string", "examples": ["bell-1"]},
            "payload": {"type": "object"},
        }
    ),
    "Summary": _object({"devices": COUNT, "health": _object(dict.fromkeys(HEALTH_ORDER, COUNT)), **SUMMARY_TOPS}),
    "Notification": _object(
        {
            "id": {"type": "integer"},
            "channel": {"type": "string"},
            "status": {"enum": ["pending", "sent", "failed", "dropped"]},
            "attempts": COUNT,
            "created_at": TIME,
            "sent_at": _nullable(TIME),
            "last_error": {"type": ["string", "null"]},
            "title": {"type": "string"},
            "body": {"type": "string"},
            "event_ids": {"type": "array", "items": {"type": "integer"}}, "escalation": {"type": "boolean"},
        }
    ),
    "RegistryPatch": {
        "type": "object",
        "description": 'An RFC 7396 merge patch: a field given is set (null or "" clears it), one left out is kept.',
        "properties": {**REGISTRY, "tags": _nullable(TAGS_SCHEMA)},
        "additionalProperties": False,
    },
    "ImportResult": _object(
        {
            "created": COUNT,
            "updated": COUNT,
            "rejected": {"type": "array", "items": _object({"line": COUNT, "error": {"type": "string"}})},
        }
    ),
    "Me": _object({"kind": {"enum": ["user", "token", "local"]}, "name": {"type": "string"},
                   "auth": {"type": "boolean"}, "role": {"enum": list(accounts.ROLES)},
                   "sites": _nullable({"type": "array", "items": {"type": "string"}})}),
    "NotifyTest": _object({"channel": {"type": "string", "pattern": f"^{CHANNEL_NAME.pattern}$"}}),
}
DEVICE_ID = DEVICE["properties"]["id"]


def _query(name: str, schema: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": schema, **extra}


def _limit(maximum: int, default: int | None, description: str) -> dict[str, Any]:
    schema = {"type": "integer", "minimum": 1, "maximum": maximum}
    return _query("limit", schema if default is None else {**schema, "default": default}, description)


PARAMETERS: dict[str, dict[str, Any]] = {
    "device_id": {"name": "device_id", "in": "path", "required": True, "schema": DEVICE_ID},
    "subsystem": {"name": "subsystem", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}},
    "silence_id": {"name": "silence_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}},
    "asset": {"name": "asset", "in": "path", "required": True, "schema": {"enum": list(ASSETS)}},
    "q": _query("q", _text(device_query.MAX_Q), "a case-insensitive substring of the id, name, site or tags"),
    "health": _query(
        "health", {"type": "array", "items": {"enum": list(HEALTH_ORDER)}}, "a comma list: any of these", explode=False
    ),
    "tag": _query(
        "tag",
        {"type": "array", "maxItems": device_query.MAX_FILTER_TAGS, "items": TAG_SCHEMA},
        "repeatable: devices holding every one of them",
    ),
    "site": _query("site", _text(registry_rules.MAX_TEXT["site"]), "devices at exactly this site"),
    "firmware": _query("firmware", _text(device_query.MAX_FIRMWARE), "devices running exactly this firmware"),
    "sort": _query(
        "sort", {"enum": list(store.SORTS), "default": "id"}, f"severity: {', '.join(HEALTH_ORDER)} (§12), then by id"
    ),
    "limit": _limit(device_query.MAX_LIMIT, None, "a page of at most this many (without it: the whole fleet)"),
    "cursor": _query("cursor", {"type": "string"}, "the next page, as the Link header gives it (with limit and sort)"),
    "format": _query("format", {"enum": ["json", "csv"], "default": "json"}, "csv adds health, liveness, last_seen"),
    "after": _query("after", {"type": "integer", "minimum": 0, "maximum": MAX_INTEGER}, "events after this id"),
    "device": _query("device", DEVICE_ID, "only this device's events"),
    "events_limit": _limit(MAX_INTEGER, 100, f"at most this many events (more counts as {MAX_LIMIT})"),
    "notifications_limit": _limit(MAX_NOTIFICATIONS, 50, "at most this many messages"),
}
HEADERS = {
    "X-Total-Count": {"description": "how many devices match (with q: up to 1000)", "required": True, "schema": COUNT},
    "X-Total-Count-Capped": {"description": "true: q's count stopped there (at least that many)", "schema": {}},
    "Link": {"description": 'the next page: `<URL>; rel="next"` (RFC 8288)', "schema": {"type": "string"}},
    "Retry-After": {"description": "seconds to wait", "required": True, "schema": {"type": "integer", "minimum": 1}},
}
ERRORS = {
    "BadRequest": "a parameter, the device id or the body breaks its rule; the error names it",
    "Unauthorized": "sign-in is configured and the request has neither a session nor a valid bearer token",
    "Forbidden": "no sign-in configured and a host name that is not loopback, or a cross-site browser request",
    "NotFound": "no such device, channel or file",
    "PayloadTooLarge": "the body is over the limit",
    "UnsupportedMediaType": "the body is not of the documented media type",
    "TooManyRequests": "a health check went to this device moments ago",
    "Unavailable": "the broker or the database is unavailable for now; try again",
}
RESPONSES: dict[str, dict[str, Any]] = {
    **{name: _json(text, _ref("Error")) for name, text in ERRORS.items()},
    "TooManyRequests": _json(ERRORS["TooManyRequests"], _ref("Error"), headers={"Retry-After": "Retry-After"}),
    "DeviceList": {
        "description": "the matching devices in the sort's order",
        "headers": {"X-Total-Count": "X-Total-Count", "X-Total-Count-Capped": "X-Total-Count-Capped", "Link": "Link"},
        "content": {
            "application/json": {"schema": {"type": "array", "items": _ref("Device")}},
            "text/csv": {"schema": {"type": "string"}},
        },
    },
    "DeviceDetail": _json("the device with its active alerts, most severe first", _ref("DeviceDetail")),
    "Alerts": _json(
        "most severe first; [] for a device that reported healthy", {"type": "array", "items": _ref("Alert")}
    ),
    "Events": _json("the events, oldest first", _object({"events": {"type": "array", "items": _ref("Event")}})),
    "Summary": _json("the fleet's counts", _ref("Summary")),
    "Status": _json("whether the console sees now (SPEC §11); always 200, ok says", _ref("Status")),
    "Me": _json("who is asking", _ref("Me")),
    "Notifications": _json(
        "newest first", _object({"notifications": {"type": "array", "items": _ref("Notification")}})
    ),
    "Acknowledged": _json("the alert, acknowledged", _ref("AlertDetail")),
    "AckQueued": _json(
        "the ingest has not carried it out yet (web.command_wait_s); it will", _object({"status": {"const": "queued"}})
    ),
    "SilenceCreated": _json(
        "the silence",
        _ref("Silence"),
        links={"end": {"operationId": "lifecycle.expire_silence", "parameters": {"silence_id": "$response.body#/id"}}},
    ),
    "Silences": _json(
        "active and future, soonest end first", _object({"silences": {"type": "array", "items": _ref("Silence")}})
    ),
    "Imported": _json("each line created, updated or refused", _ref("ImportResult")),
    "Sent": _json("the command is on its way to the device", _object({"status": {"const": "sent"}})),
    "Queued": _json(
        "queued for the channel's sender", _object({"id": {"type": "integer"}, "status": {"const": "pending"}})
    ),
}


def security_schemes(cookie: str) -> dict[str, dict[str, Any]]:
    """The two ways to be let in: an operator's session cookie, a script's bearer token."""
    return {
        "session": {"type": "apiKey", "in": "cookie", "name": cookie, "description": "an operator's sign-in"},
        "bearer": {"type": "http", "scheme": "bearer", "description": "a script's token (python -m vesper_web.passwd)"},
    }
