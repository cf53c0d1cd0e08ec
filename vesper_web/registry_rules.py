"""The registry's fields (§7): one rule per field, shared by PATCH and the CSV import; errors name the field."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from shared.notify_config import TAG

MAX_TEXT = {"name": 128, "site": 128, "notes": 2048}
MAX_TAGS = 16
MAX_TIMEOUT_S = 30 * 86400.0
MAX_ECHO = 64  # characters of an unknown field's name in an error
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")  # C0, DEL, C1, and lone surrogates (not storable)
FIELD_LIST = "name, site, tags, notes, heartbeat_timeout_s"


class FieldError(ValueError):
    """A value a field refuses; str() is "field: rule", the API's error text."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")


def text(field: str, value: Any) -> str | None:
    """name, site or notes: a string within its length and without control characters; "" or null clears it."""
    limit = MAX_TEXT[field]
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise FieldError(field, f"a string of at most {limit} characters, or null")
    if CONTROL.search(value):
        raise FieldError(field, "control characters (and lone surrogates) are not allowed")
    return value


def tags(value: Any) -> list[str]:
    """At most 16 distinct tags, each [a-z0-9][a-z0-9_.:-]{0,31}; null clears them."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_TAGS:
        raise FieldError("tags", f"an array of at most {MAX_TAGS} tags, or null")
    if not all(isinstance(tag, str) and TAG.fullmatch(tag) for tag in value):
        raise FieldError("tags", "each tag is a string of 1-32 characters: [a-z0-9] then [a-z0-9_.:-]")
    if len(set(value)) != len(value):
        raise FieldError("tags", "each tag may be given once")
    return list(value)


def timeout(value: Any) -> float | None:
    """A number of seconds above 0 and at most 30 days, or null (the configured timeout)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_TIMEOUT_S:
        raise FieldError("heartbeat_timeout_s", f"a number of seconds above 0 and at most {MAX_TIMEOUT_S:.0f}, or null")
    return float(value)


RULES: dict[str, Callable[[Any], Any]] = {
    "name": lambda value: text("name", value),
    "site": lambda value: text("site", value),
    "tags": tags,
    "notes": lambda value: text("notes", value),
    "heartbeat_timeout_s": timeout,
}


def patch(body: Any) -> dict[str, Any]:
    """A JSON merge patch (RFC 7396) of the fields, checked: each value as stored, null as the field's empty value."""
    if not isinstance(body, dict):
        raise FieldError("body", f"a JSON object, a merge patch of {FIELD_LIST}")
    unknown = sorted(str(key) for key in body if key not in RULES)
    if unknown:
        raise FieldError(unknown[0][:MAX_ECHO], f"unknown field; the fields are {FIELD_LIST}")
    return {field: RULES[field](value) for field, value in body.items()}
