"""What a notification says: its title, body and type, from one place (docs/notifications.md#text).

Device strings are plain text here: control and format characters removed, each cut to 200
characters. The title alone is what a phone's lock screen shows, so it carries the counts.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from shared.pipeline import duration
from shared.vocabulary import EVENT_TYPES, plain, render

MAX_FIELD = 200
MAX_ITEMS = 20
# Most urgent first: the order of the title's counts and of the body's lines.
CATEGORIES = {
    "blind": ("monitoring interruption", "monitoring interruptions"),
    "critical": ("critical alert", "critical alerts"),
    "offline": ("device offline", "devices offline"),
    "warning": ("warning", "warnings"),
    "event": ("event", "events"),
    "cleared": ("alert cleared", "alerts cleared"),
    "online": ("device back online", "devices back online"),
    "resumed": ("monitoring resumed", "monitoring resumed"),
}
RESOLVED = ("cleared", "online", "resumed")
PIPELINE = ("blind", "resumed")  # about the console's own pipeline, not a device: no device link
Item = tuple[str, str, str]  # (category, device_id, line)
HEADING = "Vesper: "  # a message's title begins with one of these, then the counts
REMINDER = "Still active: "
ESCALATION = "Unacknowledged for "  # then the rule's escalate_after_s in words: "Unacknowledged for 15 min: "


def clean(value: Any) -> str:
    """A device's or operator's string as one line of plain text: no control characters, at most 200 characters."""
    text = "" if value is None else str(value)
    if len(text) <= MAX_FIELD and text.isprintable() and "  " not in text:
        return text.strip()  # the usual case, decided in C: no control, format or line-break characters
    kept = "".join(" " if ch in "\r\n\t" else ch for ch in text if ch in "\r\n\t" or not _hidden(ch))
    kept = " ".join(kept.split())
    return kept if len(kept) <= MAX_FIELD else kept[: MAX_FIELD - 1] + "…"


def _hidden(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn")


def category(event: dict[str, Any]) -> str:
    """The heading an event's line goes under: its type's, or for an alert its severity's."""
    known = EVENT_TYPES.get(event["type"])
    if known is None:
        return "event"
    return known.category or ("critical" if event["severity"] == "critical" else "warning")


def line(event: dict[str, Any]) -> str:
    """One event as one line of a message: the device, then its type's words (shared/vocabulary.py)."""
    kind, payload = event["type"], event.get("payload")
    known = EVENT_TYPES.get(kind)
    words = render(known.words, payload if isinstance(payload, dict) else {}, _shown) if known else clean(kind)
    return f"{event['source_id']}: {words}"


def _shown(value: Any, form: str) -> str:
    return clean(plain(value, form))


def _counts(items: list[Item]) -> str:
    tally = {name: 0 for name in CATEGORIES}
    for cat, _, _ in items:
        tally[cat] += 1
    return ", ".join(f"{n:,} {CATEGORIES[cat][n != 1]}" for cat, n in tally.items() if n)  # "50,000 devices offline"


def escalation_heading(after_s: float) -> str:
    """The title's start of an escalation (§14): "Unacknowledged for 15 min: "."""
    return f"{ESCALATION}{duration(after_s)}: "


def is_escalation(title: str) -> bool:
    """A stored message's title says it escalated (titles are composed here only, device strings come after)."""
    return title.startswith(ESCALATION)


def compose(items: list[Item], public_url: str = "", heading: str = HEADING) -> tuple[str, str, str]:
    """(title, body, Apprise notify type) for one group of items; heading: HEADING, REMINDER or an escalation's."""
    order = list(CATEGORIES)
    ranked = sorted(items, key=lambda item: (order.index(item[0]), item[1], item[2]))
    title = heading + _counts(ranked)
    base = public_url.rstrip("/")
    linked = [(text, base and cat not in PIPELINE, device) for cat, device, text in ranked[:MAX_ITEMS]]
    lines = [f"{text} {base}/devices/{device}" if link else text for text, link, device in linked]
    if len(ranked) > MAX_ITEMS:
        lines.append(f"and {len(ranked) - MAX_ITEMS:,} more")
    if base:
        lines.append(f"Console: {base}/")
    return title, "\n".join(lines), _notify_type(ranked)


def _notify_type(items: list[Item]) -> str:
    cats = {cat for cat, _, _ in items}
    if "critical" in cats:
        return "failure"
    if cats & {"offline", "warning", "blind"}:
        return "warning"
    if cats and cats <= set(RESOLVED):
        return "success"
    return "info"


def with_message_id(body: str, message_id: int) -> str:
    """The body as sent to a service without our header: its last line names the stored message, the same on a retry."""
    return f"{body}\nMessage id: {message_id}"


def trial_message(channel: str) -> tuple[str, str, str]:
    """The message POST /api/notify/test sends."""
    return "Vesper: test notification", f"A test message for channel {channel}: this channel works.", "info"
