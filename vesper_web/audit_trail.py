"""Recording the audit log (§14, docs/audit.md): every state-changing request, whatever its answer, and each sign-in.

`record` runs after every request (the audit blueprint installs it): a POST, PUT, PATCH or DELETE that reached the
app, refused or not (401, 403, 404, 5xx too), becomes one row of shared/store/audit.py with who (the principal,
or "anonymous"), its role, the address, the endpoint, the path and the status. `detail` is a short summary read
from the request's own fields (a silence's matchers and times, a bulk action's name, which registry fields a patch
changes; never free text, a password, a token or the body wholesale), then the error the answer gave, if any. A
sign-in's row names the user tried, even when it failed; a view may say its own detail (`note`).

The entry is written in its own short transaction in a native thread (offload.py): the worker's loop keeps serving.
A failure to write it is logged and counted (vesper_web_audit_failed_total), never turned into an error.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from flask import Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from shared.ratelog import RateLimitedLog
from shared.store import audit as audit_store
from vesper_web import csrf
from vesper_web.auth import Principal, principal
from vesper_web.offload import off_the_loop
from vesper_web.paths import answers_json
from vesper_web.registry import transaction
from vesper_web.registry_rules import CONTROL

log = logging.getLogger(__name__)
_failed_log = RateLimitedLog(log, 10.0)
FAILED = "vesper_audit_failed"  # app.extensions: entries this worker could not store
MAX_VALUE = 64  # of each value quoted in a detail
MAX_ERROR = 160  # of the error an answer gave
UNROUTED = "(none)"  # the action of a request no route took (404, 405)
# The request fields a detail quotes, per endpoint: matchers, times, names. Free text (comment, note, notes) never.
SUMMARY = {
    "lifecycle.create_silence": ("device", "tag", "subsystem", "starts_at", "ends_at", "duration_s"),
    "bulk.bulk": ("action", "dry_run", "filter", "tag", "duration_s", "ends_at"),
    "notifications.notify_test": ("channel",),
}
FIELD_NAMES = frozenset({"registry.patch_device"})  # which fields a patch changes; never their values


def clean(value: Any, cap: int = MAX_VALUE) -> str:
    """A value as one line of at most `cap` characters: text as it is, anything else as compact JSON."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)
    return CONTROL.sub("?", text)[:cap]


def summary(endpoint: str, body: Any) -> str | None:
    """The detail a request's own fields give (SUMMARY, FIELD_NAMES), or None."""
    if not isinstance(body, dict):
        return None
    if endpoint in FIELD_NAMES:
        return "fields: " + ", ".join(clean(key) for key in sorted(body)[:20])
    given = [f"{name}={clean(body[name])}" for name in SUMMARY.get(endpoint, ()) if name in body]
    if endpoint == "lifecycle.create_silence" and not any(k in body for k in ("device", "tag", "subsystem")):
        given.insert(0, "fleet")
    return " ".join(given) or None


def detail(said: str | None, error: str | None) -> str | None:
    """What the view said (or the request's summary), then the error its answer gave."""
    parts = [part for part in (said, error and "error: " + clean(error, MAX_ERROR)) if part]
    return "; ".join(parts) or None


def note(said: str, who: Principal | None = None) -> None:
    """Let a view say its entry's detail, and who acted when the guard did not know yet (a sign-in)."""
    g.audit_detail = said
    if who is not None:
        g.audit_who = who


def _body_summary(endpoint: str) -> str | None:
    if endpoint == "registry.import_devices":
        return f"CSV of {request.content_length or 0} bytes"
    if endpoint not in SUMMARY and endpoint not in FIELD_NAMES:
        return None
    try:
        return summary(endpoint, json.loads(request.get_data()))
    except Exception:  # noqa: BLE001 - not JSON, too large, already refused: a summary is only a help
        return None


def _error(response: Response) -> str | None:
    if response.status_code < 400 or not answers_json(request.path) or not response.is_json:
        return None
    found = response.get_json(silent=True)
    return str(found.get("error")) if isinstance(found, dict) and found.get("error") else None


def _tried(endpoint: str) -> str | None:
    """The user name a sign-in form posted (never anything else of it), or None."""
    if endpoint != "login.login":
        return None
    try:
        return request.form.get("username")
    except HTTPException:  # a body over the limit (413): nothing of it is read
        return None


def _who(endpoint: str) -> tuple[str, str, str | None]:
    """(actor, kind, role): who the view said, else the name a sign-in tried, else the principal or "anonymous"."""
    who, tried = g.get("audit_who"), _tried(endpoint)
    if who is None and tried is not None:
        return (clean(tried) or "anonymous"), "anonymous", None
    who = who or principal()
    if who is not None:
        return ("local" if who.kind == "local" else who.name), who.kind, who.role
    return "anonymous", "anonymous", None


def entry(response: Response, now: float) -> audit_store.Entry:
    """The audit entry of the current request and its answer."""
    endpoint = request.endpoint or UNROUTED
    actor, kind, role = _who(endpoint)
    said = g.get("audit_detail") or _body_summary(endpoint)
    return audit_store.Entry(
        at=now, actor=actor, kind=kind, role=role, address=request.remote_addr, method=request.method,
        action=endpoint, target=clean(request.path, audit_store.CAPS["target"]), status=response.status_code,
        detail=detail(said, _error(response)),
    )  # fmt: skip


def _write(target: str, found: audit_store.Entry) -> None:
    with transaction(target) as conn:
        audit_store.record(conn, found)


def record(response: Response) -> Response:
    """after_request: store the entry of a state-changing request; a failure is logged and counted, never raised."""
    if request.method in csrf.SAFE_METHODS:  # a read: GET, HEAD, OPTIONS (the one rule of what changes state)
        return response
    found = None
    try:
        found = entry(response, time.time())
        off_the_loop(_write, current_app.config["VESPER"].database.target, found)
    except Exception as exc:  # noqa: BLE001 - the request's own answer stands whatever happens here
        current_app.extensions[FAILED] = failed() + 1
        what = f"{found.method} {found.action} by {found.actor!r}, {found.status}" if found else request.method
        _failed_log.warning("audit", "an audit entry was not stored (%s): %s", what, clean(str(exc), MAX_ERROR))
    return response


def failed() -> int:
    """Entries this worker could not store (for /metrics)."""
    return int(current_app.extensions.get(FAILED, 0))
