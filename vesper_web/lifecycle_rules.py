"""The lifecycle's request bodies (§9): an acknowledgement's note, a silence; a 400 names the field and its rule."""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

from flask import abort

from shared.notify_config import TAG
from shared.topics import is_valid_device_id
from vesper_web.registry_rules import CONTROL

MAX_NOTE = 500
MAX_SILENCE_S = 366 * 86400.0
SILENCE_FIELDS = ("device", "tag", "subsystem", "starts_at", "ends_at", "duration_s", "comment")
SUBSYSTEM_MAX = 64


def json_body(raw: bytes, empty_ok: bool = False, holding: str = "") -> dict[str, Any]:
    """A request body that is a JSON object (or empty, when that is allowed), or a 400 saying what it should hold."""
    if not raw.strip() and empty_ok:
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        body = None
    if not isinstance(body, dict):
        abort(400, f"body: a JSON object{holding and ' with ' + holding}")
    return body


def _text(body: dict[str, Any], field: str, limit: int) -> str | None:
    value = body.get(field)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > limit or CONTROL.search(value):
        abort(400, f"{field}: a string of at most {limit} characters without control characters, or null")
    return value


def ack_note(raw: bytes) -> str | None:
    """The note of an acknowledgement (the body may be empty)."""
    body = json_body(raw, empty_ok=True)
    unknown = sorted(set(body) - {"note"})
    if unknown:
        abort(400, f"{str(unknown[0])[:64]}: unknown field (only note)")
    return _text(body, "note", MAX_NOTE)


def _time(body: dict[str, Any], field: str) -> float | None:
    value = body.get(field)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        abort(400, f"{field}: an ISO-8601 time with its zone, e.g. 2026-12-01T14:00:00Z")
    return parsed.timestamp()


def _matchers(body: dict[str, Any]) -> dict[str, str | None]:
    device, tag, subsystem = body.get("device"), body.get("tag"), body.get("subsystem")
    if device is not None and not (isinstance(device, str) and is_valid_device_id(device)):
        abort(400, "device: a device id, 1-64 characters of A-Z a-z 0-9 _ . : -")
    if tag is not None and not (isinstance(tag, str) and TAG.fullmatch(tag)):
        abort(400, "tag: a tag, [a-z0-9][a-z0-9_.:-]{0,31}")
    if subsystem is not None and not (
        isinstance(subsystem, str) and 0 < len(subsystem) <= SUBSYSTEM_MAX and subsystem.isprintable()
    ):
        abort(400, f"subsystem: 1-{SUBSYSTEM_MAX} printable characters")
    return {"device_id": device, "tag": tag, "subsystem": subsystem}


def silence(raw: bytes, now: float) -> dict[str, Any]:
    """A new silence's fields (Silence's), or a 400; no matcher means the whole fleet."""
    body = json_body(raw)
    unknown = sorted(set(body) - set(SILENCE_FIELDS))
    if unknown:
        abort(400, f"{str(unknown[0])[:64]}: unknown field (one of {', '.join(SILENCE_FIELDS)})")
    given_start = _time(body, "starts_at")
    starts_at = now if given_start is None else given_start
    ends_at, duration = _time(body, "ends_at"), body.get("duration_s")
    if (ends_at is None) == (duration is None):
        abort(400, "ends_at: give ends_at or duration_s, one of them")
    if duration is not None:
        if isinstance(duration, bool) or not isinstance(duration, int | float) or not math.isfinite(duration):
            abort(400, "duration_s: a number of seconds")
        ends_at = starts_at + duration
    assert ends_at is not None
    if not (ends_at > starts_at and ends_at > now and ends_at - starts_at <= MAX_SILENCE_S):
        field = "ends_at" if duration is None else "duration_s"  # the one the client gave is the one to fix
        abort(400, f"{field}: the end must be after starts_at and after now, at most 366 days after starts_at")
    return {**_matchers(body), "starts_at": starts_at, "ends_at": ends_at, "comment": _text(body, "comment", MAX_NOTE)}
