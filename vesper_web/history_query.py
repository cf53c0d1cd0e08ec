"""History's query strings (§13): the window (from, to), the incidents' filters, group_by; a 400 names the parameter.

`from` and `to` take an ISO-8601 date-time with its zone (Z or an offset) or a date, YYYY-MM-DD, which is that
day's midnight in history.timezone. `to` defaults to now and is clipped to it (nothing is known of the future);
`from` defaults to 30 days before `to`. One parser for every route, so one rule and one wording.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, tzinfo
from typing import Any
from urllib.parse import urlencode

from flask import abort, request
from werkzeug.datastructures import MultiDict

from shared.notify_config import TAG
from shared.severity import ALERT_STATES_BY_RANK
from shared.store.reports import GROUPS
from shared.topics import is_valid_device_id
from vesper_web.lifecycle_rules import SUBSYSTEM_MAX
from vesper_web.registry_rules import CONTROL, MAX_TEXT

DEFAULT_DAYS = 30
DAY_S = 86400.0
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
MAX_ECHO = 64  # of a refused value in an error
KINDS = ("outage", "incident", "blind")
STATES = (*ALERT_STATES_BY_RANK, "offline", "blind")  # an episode's worst: an incident's state, an outage's, blind's
BOOLEANS = {"true": True, "1": True, "false": False, "0": False}
INCIDENTS_LIMIT = 100
PROBLEMS_LIMIT = 10
MAX_PROBLEMS = 100
MAX_DAYS = 400  # group_by=day: one window per day, so the days asked are bounded (history.retention_days' default)
TIME_RULE = "an ISO-8601 date-time with its zone (2026-03-01T00:00:00Z, +01:00) or a date (2026-03-01)"

Args = MultiDict[str, str]


@dataclass(frozen=True)
class Window:
    """A report's [start, end) in epoch seconds, end no later than now."""

    start: float
    end: float


def instant(name: str, raw: str, zone: tzinfo) -> float:
    """An ISO-8601 date-time with its zone, or a date (its midnight in zone), as epoch seconds; else a 400."""
    try:
        if DATE.fullmatch(raw):
            return datetime.combine(date.fromisoformat(raw), time(), zone).timestamp()
        parsed = datetime.fromisoformat(raw)
        if parsed.tzinfo is not None:
            return parsed.timestamp()
    except (ValueError, OverflowError):
        pass
    abort(400, f"{name}: {TIME_RULE}, not {raw[:MAX_ECHO]!r}")


def window(args: Args, now: float, zone: tzinfo) -> Window:
    """The request's window: `to` (default and at most now) and `from` (default 30 days before `to`)."""
    end = min(now, instant("to", args["to"], zone)) if "to" in args else now
    start = instant("from", args["from"], zone) if "from" in args else end - DEFAULT_DAYS * DAY_S
    if start >= end:
        abort(400, "from: must be before to (and before now)")
    return Window(start, end)


def _one(args: Args, name: str) -> str | None:
    values = args.getlist(name)
    if len(values) > 1:
        abort(400, f"{name}: give one")
    return values[0] if values else None


def _checked(args: Args, name: str, valid: Any, rule: str) -> str | None:
    value = _one(args, name)
    if value is not None and not valid(value):
        abort(400, f"{name}: {rule}")
    return value


def _site(value: str) -> bool:
    return 0 < len(value) <= MAX_TEXT["site"] and not CONTROL.search(value)


def _subsystem(value: str) -> bool:
    return 0 < len(value) <= SUBSYSTEM_MAX and value.isprintable()


def incident_filters(args: Args) -> dict[str, Any]:
    """GET /api/incidents's filters as history.incidents' keywords (device, site, tag, subsystem, state, open, kind)."""
    opened = _checked(args, "open", BOOLEANS.__contains__, "true or false")
    return {
        "device": _checked(args, "device", is_valid_device_id, "a device id, 1-64 characters of A-Z a-z 0-9 _ . : -"),
        "site": _checked(args, "site", _site, f"1 to {MAX_TEXT['site']} characters, without control characters"),
        "tag": _checked(args, "tag", TAG.fullmatch, "one tag, [a-z0-9][a-z0-9_.:-]{0,31}"),
        "subsystem": _checked(args, "subsystem", _subsystem, f"1-{SUBSYSTEM_MAX} printable characters"),
        "state": _checked(args, "state", STATES.__contains__, f"one of {', '.join(STATES)}"),
        "open": None if opened is None else BOOLEANS[opened],
        "kind": _checked(args, "kind", KINDS.__contains__, f"one of {', '.join(KINDS)}"),
    }


def group_by(args: Args, span: Window) -> str:
    """`group_by` (default site); a window of days is bounded (each day is its own window)."""
    group = args.get("group_by", "site")
    if group not in GROUPS:
        abort(400, f"group_by: one of {', '.join(GROUPS)}")
    if group == "day" and span.end - span.start > MAX_DAYS * DAY_S:
        abort(400, f"from: group_by=day reports a window of at most {MAX_DAYS} days")
    return group


def form(args: Args) -> str:
    """`format`: json (default) or csv."""
    chosen = args.get("format", "json")
    if chosen not in ("json", "csv"):
        abort(400, "format: json or csv")
    return chosen


def next_link(cursor: str | None) -> str | None:
    """The Link header's next page (RFC 8288): this request with the store's cursor for what follows."""
    if cursor is None:
        return None
    args = [(k, v) for k, v in request.args.items(multi=True) if k != "cursor"]
    args.append(("cursor", cursor))
    return f'<{request.path}?{urlencode(args)}>; rel="next"'
