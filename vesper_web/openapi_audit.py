"""The API description's components of the audit log (§14): an entry, GET /api/audit's parameters and answer.

Each rule is read from its home (shared/store/audit.py's caps and cursor, vesper_web/audit.py, history's times).
"""

from __future__ import annotations

from typing import Any

from shared.accounts import ROLES
from shared.store.audit import CAPS, CURSOR
from vesper_web import audit, audit_trail, device_query
from vesper_web.openapi_history import TIME, WHEN
from vesper_web.openapi_schemas import PLAIN_TEXT

KINDS = ("user", "token", "local", "anonymous")


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": schema}


def _text(name: str, description: str, nullable: bool = False) -> dict[str, Any]:
    return {"type": ["string", "null"] if nullable else "string", "maxLength": CAPS[name], "description": description}


ENTRY = {
    "type": "object",
    "required": ["id", "at", *CAPS, "status"],
    "properties": {
        "id": {"type": "integer"},
        "at": TIME,
        "actor": _text("actor", 'the user or token; "local" without sign-in; a sign-in\'s: the name tried'),
        "kind": {"enum": list(KINDS), "description": "anonymous: no valid session or token (a failed sign-in too)"},
        "role": {"type": ["string", "null"], "enum": [*ROLES, None]},
        "address": _text("address", "the client's address (after web.proxy_hops)", nullable=True),
        "method": {"type": "string", "examples": ["POST"]},
        "action": _text("action", f'the endpoint, e.g. lifecycle.acknowledge; "{audit_trail.UNROUTED}": no route'),
        "target": _text("target", "the path", nullable=True),
        "status": {"type": "integer", "description": "the answer's HTTP status"},
        "detail": _text("detail", "a short summary (docs/audit.md), then the answer's error", nullable=True),
    },
}
NAME = {"type": "string", "minLength": 1, "maxLength": audit.MAX_NAME, "pattern": PLAIN_TEXT}
PARAMETERS: dict[str, dict[str, Any]] = {
    "audit_from": _query("from", WHEN, "entries from this time on (a date: its midnight in history.timezone)"),
    "audit_to": _query("to", WHEN, "entries before this time"),
    "audit_actor": _query("actor", NAME, "this actor's entries"),
    "audit_action": _query("action", NAME, "this action's (an endpoint, e.g. login.login)"),
    "audit_limit": _query(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": device_query.MAX_LIMIT, "default": audit.DEFAULT_LIMIT},
        "at most this many entries (CSV: default all)",
    ),
    "audit_cursor": _query(
        "cursor", {"type": "string", "pattern": f"^{CURSOR.pattern}$"}, "the next page, as the Link header gives it"
    ),
    "audit_format": _query(
        "format",
        {"enum": ["json", "csv"], "default": "json"},
        f"csv: every entry the filters match, columns {','.join(audit.CSV_COLUMNS)}",
    ),
}
RESPONSES: dict[str, dict[str, Any]] = {
    "AuditEntries": {
        "description": "newest first",
        "headers": {"Link": "Link"},
        "content": {
            "application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/AuditEntry"}}},
            "text/csv": {"schema": {"type": "string"}},
        },
    },
}


def extend(schemas: dict[str, dict[str, Any]], responses: dict[str, dict[str, Any]]) -> None:
    """Add these components to the document's (openapi.describe calls it once per document)."""
    schemas["AuditEntry"] = ENTRY
    responses.update(RESPONSES)
