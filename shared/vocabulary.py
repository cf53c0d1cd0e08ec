"""The one home of Vesper's words (docs/events.md#vocabulary): what devices publish and what events the console makes.

The classifier and its handlers (vesper_ingest), the notification rules and text (shared/notify_*) and the
console's scripts (generated, /static/rules.js) all read these tables: a new event type is a row here and the
handler that makes it (docs/development.md#adding-an-event-type).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TopicKind:
    """What devices publish on `{prefix}/{device_id}/status/{name}`."""

    name: str
    once: bool = True  # a broker's QoS 1 repeat is recognised and applied once (docs/architecture.md#redelivery)
    fields: tuple[str, ...] = ()  # a plain kind's required payload fields, each a short printable string


@dataclass(frozen=True)
class EventType:
    """One event type: its severity, the console's label, its words and what a notification makes of it."""

    name: str
    label: str  # the console's Type column
    words: str  # one line about it, the same in the console and in a notification: see render()
    severity: str = "info"  # "": the event decides (an alert, by its state)
    category: str = "event"  # the notification heading (shared/notify_text.py); "": its severity names it
    ends: str = ""  # the problem type this one ends: an alert_cleared ends an alert
    problem: bool = False  # a channel told of it is told again when it ends (vesper_ingest/notify/grouping.py)
    liveness: bool = False  # about whether the device is heard: never held back by a flood


# QoS 1 for all: the broker delivers at the lower of subscription and publish QoS, so QoS 0 publishers are
# unchanged, and a QoS 1 message waits in the ingest's persistent session while it restarts (§16).
TOPIC_KINDS = {
    kind.name: kind
    for kind in (
        TopicKind("heartbeat", once=False),
        TopicKind("alerts"),
        TopicKind("info"),
    )
}

_ = EventType  # the table reads as rows: name, label, words, then what differs from an info event
EVENT_TYPES = {
    event.name: event
    for event in (
        _("alert", "Alert", "{subsystem} {state}[: {message}][ (was {previous_state})]", "", "", problem=True),
        _("alert_cleared", "Cleared", "{subsystem} cleared[ (was {previous_state})]", category="cleared", ends="alert"),
        _("device_offline", "Offline", "offline, last seen {last_seen:time}|offline, never heard live",
          "warning", "offline", problem=True, liveness=True),
        _("device_online", "Online", "back online", category="online", ends="device_offline", liveness=True),
        _("playback_started", "Playback started", "melody {melody_uid}|melody started"),
        _("playback_stopped", "Playback stopped", "melody {melody_uid} stopped|stopped"),
        _("info", "Info", "{type}[ {payload:json}]"),
        _("alert_acknowledged", "Acknowledged", "{subsystem} acknowledged by {by}[: {note}]"),
        _("silence_created", "Silenced", "{scope} silenced until {ends_at:time} by {by}[: {comment}]"),
        _("silence_ended", "Silence ended",
          "silence of {scope} ended early by {by}|silence of {scope} ended as planned"),
        _("alert_flapping", "Flapping", "{subsystem} changed state {transitions} times: quiet until stable", "warning"),
        _("alert_flapping_ended", "Flapping ended", "{subsystem} stable again, {state}"),
        _("device_flooding", "Flooding",
          "over {limit} events in {window_s} s: its events held back, its state still kept", "warning"),
        _("device_flooding_ended", "Flooding ended", "under the limit again: {suppressed} events held back"),
        _("monitoring_interrupted", "Monitoring interrupted",
          "not receiving device data since {since:time}[ ({reason})]", "warning", "blind", problem=True),
        _("monitoring_resumed", "Monitoring resumed",
          "receiving device data again (blind {down_s} s since {since:time})", category="resumed",
          ends="monitoring_interrupted"),
    )
}

_FIELD = re.compile(r"\{(\w+)(?::(\w+))?\}")
_OPTIONAL = re.compile(r"\[([^\]]*)\]")
Show = Callable[[Any, str], str]  # (a payload value, its format: "", "time" or "json") -> its text


def plain(value: Any, form: str) -> str:
    """A value as text: JSON for "json", the value itself otherwise (times stay as the event says them)."""
    if form == "json":
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def _fill(words: str, payload: dict[str, Any], show: Show) -> str | None:
    """The words with their fields filled in, or None when one is missing (null or empty)."""
    missing = False

    def field(match: re.Match[str]) -> str:
        nonlocal missing
        value = payload.get(match[1])
        if value is None or value == "":
            missing = True
            return ""
        return show(value, match[2] or "")

    text = _FIELD.sub(field, words)
    return None if missing else text


def render(words: str, payload: dict[str, Any], show: Show = plain) -> str:
    """The first of the `|` choices whose fields are all there; a `[...]` part is left out when one of its are not.

    `{name}` is the payload's field, `{name:time}` a time, `{name:json}` any value as JSON. console.js renders
    the same words the same way (tests/test_vocabulary.py holds the two to it).
    """
    for choice in words.split("|"):
        parts = _OPTIONAL.split(choice)  # required, optional, required, ...: each part filled on its own
        filled = [_fill(part, payload, show) for part in parts]
        if all(text is not None for text in filled[::2]):
            return "".join(text or "" for text in filled)
    return ""


def severity_of(kind: str) -> str:
    """An event type's own severity (info for a type not in the table)."""
    event = EVENT_TYPES.get(kind)
    return event.severity if event and event.severity else "info"


def js_module() -> str:
    """The event types as an ES module for the console (appended to /static/rules.js)."""
    table = {name: {"label": t.label, "words": t.words} for name, t in EVENT_TYPES.items()}
    return (
        "// Generated from shared/vocabulary.py: the one home of the event types' labels and words.\n"
        f"export const EVENT_TYPES = Object.freeze({json.dumps(table, ensure_ascii=False)});\n"
    )
