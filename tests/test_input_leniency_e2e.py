"""No alert dropped for a cosmetic reason (SPEC §2, §11), end to end: the real ingest and web, a real broker.

Unknown fields are ignored and a msg over 1 KiB is cut to 1024 characters ending in "…" and counted as
`alerts.msg_truncated`; a subsystem that is not 1–64 printable characters is still refused.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from shared import config as config_mod
from tests.support import wait_for

TIMEOUT = 30
DEVICE = "bell-7"
EXTRA = {"subsystem": "Motor", "state": "CRITICAL", "msg": "x", "code": 7, "fw": {"v": [2, 1]}, "ts": None}
LONG = {"subsystem": "Audio", "state": "WARNING", "msg": "0123456789" * 500, "seq": 12}  # 5,000 characters
CUT = ("0123456789" * 103)[:1023] + "…"
NOT_A_KEY = {"subsystem": "Relay\u200b", "state": "FAILED", "msg": "zero-width space", "code": 1}


def get(bind: str, path: str) -> tuple[int, bytes]:
    """One GET to the running web: (status, body); (0, b"") while it does not answer."""
    try:
        with urllib.request.urlopen(f"http://{bind}{path}", timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:
        return 0, b""


def api(bind: str, path: str) -> Any:
    """A JSON answer of the API, or None until it answers 200."""
    status, body = get(bind, path)
    return json.loads(body) if status == 200 else None


def metric(bind: str, sample: str) -> float | None:
    """One sample of /metrics (`name` or `name{labels}`), or None when it is not there."""
    _, body = get(bind, "/metrics")
    found = re.search(rb"^" + re.escape(sample.encode()) + rb" (\S+)$", body, re.M)
    return float(found.group(1)) if found else None


def test_extra_fields_and_a_long_msg_are_applied_and_the_cut_is_counted(
    make_config: Any, start_ingest: Any, start_web: Any, peer: Any
) -> None:
    config: Path = make_config()
    start_ingest(config)
    start_web(config)
    bind = config_mod.load(config).web.bind
    for body in (EXTRA, LONG, NOT_A_KEY):
        peer.publish(f"vesper/{DEVICE}/status/alerts", body)
    peer.publish(f"vesper/{DEVICE}/status/info", {"type": "door_open", "at": 3})  # no payload, an extra field

    def active() -> list[tuple[str, str, str]] | None:
        rows = api(bind, f"/api/devices/{DEVICE}/alerts") or []
        return [(a["subsystem"], a["state"], a["message"]) for a in rows] if len(rows) == 2 else None

    got = wait_for(active, TIMEOUT, "both alerts active through the API")
    assert sorted(got) == [("Audio", "WARNING", CUT), ("Motor", "CRITICAL", "x")]
    assert len(CUT) == 1024
    wait_for(lambda: metric(bind, "vesper_ingest_alerts_msg_truncated_total") == 1, TIMEOUT,
             "the cut msg counted on /metrics")  # fmt: skip
    wait_for(lambda: metric(bind, 'vesper_ingest_rejected_total{reason="bad_value"}') == 1, TIMEOUT,
             "the subsystem with a zero-width space refused")  # fmt: skip

    def stored() -> list[dict[str, Any]] | None:
        found = (api(bind, f"/api/events?device={DEVICE}&limit=100") or {}).get("events", [])
        kinds = [e["type"] for e in found]
        return found if kinds.count("alert") == 2 and "info" in kinds else None

    events = wait_for(stored, TIMEOUT, "the alert and info events stored")
    alerts = {e["payload"]["subsystem"]: e for e in events if e["type"] == "alert"}
    assert alerts["Audio"]["payload"]["message"] == CUT and alerts["Motor"]["severity"] == "critical"
    assert [e["payload"] for e in events if e["type"] == "info"] == [{"type": "door_open", "payload": {}}]
    _, text = get(bind, "/metrics")
    assert b"unknown_field" not in text and b'reason="bad_value"' in text
