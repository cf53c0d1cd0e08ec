"""The firmware version a heartbeat names (§12, `devices.firmware_key`): what the ingest stores of it, or why not.

A string of 1 to MAX printable characters is kept as sent; a number as its JSON text ("155", "1.5");
anything else (true, null, an object, an array, an empty, long or unprintable string) is not stored,
counted as REFUSED, and never refuses the heartbeat itself. A heartbeat without the key says nothing
of its firmware: the stored version stays.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

MAX = 64  # characters; vesper_web/device_query.py's MAX_FIRMWARE is this
REFUSED = "heartbeats.firmware_refused"  # vesper_ingest_heartbeats_firmware_refused_total on /metrics


def _stored(value: Any) -> str | None:
    """The text kept of a version, or None when it is not one to keep."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        value = json.dumps(value)
    if isinstance(value, str) and 0 < len(value) <= MAX and value.isprintable():
        return value
    return None


def version(fields: Mapping[str, Any] | None, key: str) -> tuple[str | None, bool]:
    """(the version to store or None, whether a value was there and refused) of a heartbeat's decoded object.

    The object is the classifier's (classify.Heartbeat.fields): the hot path decodes a heartbeat once.
    """
    value = fields.get(key) if fields is not None else None
    if value is None:
        return None, False
    kept = _stored(value)
    return kept, kept is None
