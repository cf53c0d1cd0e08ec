"""Pure classification of one device message: a Message or a Rejected with its reason."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from shared.events import storable_text
from shared.topics import Topics, is_valid_device_id
from shared.vocabulary import TOPIC_KINDS

MAX_PAYLOAD = 64 * 1024
MAX_HEARTBEAT_KEPT = 4 * 1024
MAX_NAME = 64
MAX_MESSAGE = 1024
# Objects and arrays inside objects and arrays. Real payloads are 1 or 2 deep; a payload the ingest
# can still parse at 980 deep made the web's JSON decoding (deeper in its own stack) hit the
# recursion limit: /api/events answered 500 for as long as the event was recent.
MAX_DEPTH = 32
ALERT_STATES = ("WARNING", "CRITICAL", "FAILED", "CLEARED")
ELLIPSIS = "\u2026"

REASONS = (
    "bad_topic",
    "bad_device_id",
    "oversized",
    "not_utf8",
    "not_json",
    "not_object",
    "missing_field",
    "bad_type",
    "bad_value",
    "too_many_subsystems",  # refused when applied (vesper_ingest/apply.py), past alerts.max_subsystems_per_device
)


@dataclass(frozen=True)
class Heartbeat:
    """A heartbeat; `body` is the JSON object to keep, if it is one and small; `fields` that object, decoded once."""

    device_id: str
    retained: bool
    body: str | None
    fields: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    kind: ClassVar[str] = "heartbeat"


@dataclass(frozen=True)
class Alert:
    """A subsystem state transition; `truncated` when its `msg` was over MAX_MESSAGE and cut."""

    device_id: str
    subsystem: str
    state: str
    message: str | None
    truncated: bool = False
    kind: ClassVar[str] = "alerts"


@dataclass(frozen=True)
class Info:
    """An info message: playback or any other type."""

    device_id: str
    type: str
    payload: dict[str, Any]
    kind: ClassVar[str] = "info"


@dataclass(frozen=True)
class Reading:
    """A message of a plain topic kind (shared/vocabulary.py): its declared fields checked, the object kept whole."""

    device_id: str
    kind: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class Rejected:
    """A message that is not applied, with why."""

    reason: str
    detail: str = ""
    device_id: str | None = None
    kind: str = "other"  # the topic's kind when it names one


Message = Heartbeat | Alert | Info | Reading


class _OutOfRange(ValueError):
    """A number JSON can write but a double cannot hold (1e400): Python would keep it as infinity."""


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _OutOfRange(text[:40])
    return value


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN, Infinity: Python accepts them, browsers do not


def _unstorable(obj: Any, text: str) -> Rejected | None:
    """Nesting too deep, or a lone surrogate (only a \\uD800-style escape can make one)."""
    if "\\u" not in text and text.count("{") + text.count("[") <= MAX_DEPTH:
        return None  # the common case, decided without walking the value
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                return Rejected("bad_value", f"nested deeper than {MAX_DEPTH}")
            items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
            stack.extend((item, depth + 1) for item in items)
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return Rejected("not_utf8", "lone surrogate escape")
    return None


def _decode_object(payload: bytes) -> dict[str, Any] | Rejected:
    """UTF-8 JSON object that SQLite, the API and a browser can all take, or the reason it is not one."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return Rejected("not_utf8")
    try:
        obj = json.loads(text, parse_float=_finite, parse_constant=_not_json)
    except _OutOfRange as exc:
        return Rejected("bad_value", f"number out of range {exc}")
    except (ValueError, RecursionError):
        return Rejected("not_json")
    if not isinstance(obj, dict):
        return Rejected("not_object", type(obj).__name__)
    return _unstorable(obj, text) or obj


def _missing(obj: dict[str, Any], required: set[str]) -> Rejected | None:
    # Fields the console does not know are ignored, not refused: newer firmware may add them (SPEC §2, §11).
    missing = sorted(required - obj.keys())
    return Rejected("missing_field", missing[0]) if missing else None


def _cut(msg: str) -> str:
    """At most MAX_MESSAGE characters: a longer text cut to end with an ellipsis (the alert is real)."""
    return msg if len(msg) <= MAX_MESSAGE else msg[: MAX_MESSAGE - len(ELLIPSIS)] + ELLIPSIS


def _name_ok(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_NAME and value.isprintable()


def _heartbeat(device_id: str, kind: str, payload: bytes, retained: bool) -> Heartbeat:
    if len(payload) <= MAX_HEARTBEAT_KEPT:
        obj = _decode_object(payload)
        if isinstance(obj, dict):
            return Heartbeat(device_id, retained, json.dumps(obj, separators=(",", ":"), ensure_ascii=False), obj)
    return Heartbeat(device_id, retained, None)


def _alert(device_id: str, kind: str, payload: bytes, retained: bool) -> Alert | Rejected:
    obj = _decode_object(payload)
    if isinstance(obj, Rejected):
        return obj
    bad = _missing(obj, {"subsystem", "state"})
    if bad:
        return bad
    subsystem, state, msg = obj["subsystem"], obj["state"], obj.get("msg")
    if not isinstance(subsystem, str) or not isinstance(state, str) or not isinstance(msg, str | None):
        return Rejected("bad_type")
    if not _name_ok(subsystem):
        return Rejected("bad_value", "subsystem")
    if state not in ALERT_STATES:
        return Rejected("bad_value", "state")
    if msg is None:
        return Alert(device_id, subsystem, state, None)
    return Alert(device_id, subsystem, state, storable_text(_cut(msg)), len(msg) > MAX_MESSAGE)


def _info(device_id: str, kind: str, payload: bytes, retained: bool) -> Info | Rejected:
    obj = _decode_object(payload)
    if isinstance(obj, Rejected):
        return obj
    bad = _missing(obj, {"type"})
    if bad:
        return bad
    type_, data = obj["type"], obj.get("payload", {})
    if not isinstance(type_, str) or not isinstance(data, dict):
        return Rejected("bad_type")
    if not _name_ok(type_):
        return Rejected("bad_value", "type")
    melody = data.get("melody_uid")
    if type_.startswith("playback_") and melody is not None and not _name_ok(melody):
        return Rejected("bad_value", "melody_uid")
    return Info(device_id, type_, data)


def _reading(device_id: str, kind: str, payload: bytes, retained: bool) -> Reading | Rejected:
    """A plain kind's object: each declared field a short printable string; other fields kept as they are."""
    obj = _decode_object(payload)
    if isinstance(obj, Rejected):
        return obj
    fields = TOPIC_KINDS[kind].fields
    bad = _missing(obj, set(fields))
    if bad:
        return bad
    wrong = [name for name in fields if not _name_ok(obj[name])]
    return Rejected("bad_value", wrong[0]) if wrong else Reading(device_id, kind, obj)


Parse = Callable[[str, str, bytes, bool], "Message | Rejected"]
PARSERS: dict[str, Parse] = {"heartbeat": _heartbeat, "alerts": _alert, "info": _info}  # the rest: _reading


def classify(topics: Topics, topic: str, payload: bytes, retained: bool) -> Message | Rejected:
    """Turn one received MQTT message into a Message, or a Rejected naming the reason (and the topic's kind)."""
    parsed = topics.parse_status(topic)
    if parsed is None:
        return Rejected("bad_topic")
    device_id, kind = parsed
    if not is_valid_device_id(device_id):
        return Rejected("bad_device_id", device_id[:80], kind=kind)
    if len(payload) > MAX_PAYLOAD:
        return Rejected("oversized", str(len(payload)), device_id, kind)
    result = PARSERS.get(kind, _reading)(device_id, kind, payload, retained)
    if isinstance(result, Rejected):
        return Rejected(result.reason, result.detail, device_id, kind)
    return result
