"""Schemathesis hooks for tests/test_openapi.py's `st run` (its config names this module): what no schema can say."""

from __future__ import annotations

import time
from typing import Any

import schemathesis

from vesper_web.registry_csv import HEADER

CSV_HEADER = ",".join(HEADER) + "\n"
SOON, LATER = "2999-01-01T00:00:00Z", "2999-01-02T00:00:00Z"
HISTORY = ("GET /api/devices/{device_id}/history", "GET /api/incidents", "GET /api/reports/availability",
           "GET /api/reports/problems")  # fmt: skip


def _past(days: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - days * 86400))


@schemathesis.hook
def before_call(context: schemathesis.HookContext, case: schemathesis.Case, kwargs: dict[str, Any]) -> None:
    """Keep made-up values out where only the app's own make sense; everything else stays generated."""
    if case.operation.label == "GET /api/devices" and case.query:
        case.query.pop("cursor", None)  # valid only as a Link header gave it: a made-up one is a 400 by design
    if case.operation.label == "POST /api/devices" and isinstance(case.body, str):
        # The header's rule (id, each column once) is beyond a pattern; the lines after it are what gets fuzzed.
        case.body = CSV_HEADER + case.body
    if case.operation.label == "POST /api/silences" and isinstance(case.body, dict):
        # "Ends after now and after its start" is a rule of time: made-up times are kept from the past.
        if "starts_at" in case.body:
            case.body["starts_at"] = SOON
        if "ends_at" in case.body:
            case.body["ends_at"] = LATER
    if case.operation.label in HISTORY and case.query:
        # "from before to, both before now" spans two parameters and the clock: made-up times are kept to last week,
        # and a cursor is valid only as a Link header gave it.
        if "from" in case.query:
            case.query["from"] = _past(7)
        if "to" in case.query:
            case.query["to"] = _past(1)
        case.query.pop("cursor", None)
        if not str(case.query.get("subsystem", "")).isprintable():
            case.query["subsystem"] = "Audio"  # printable (str.isprintable: no private-use, format, ...) is no pattern
