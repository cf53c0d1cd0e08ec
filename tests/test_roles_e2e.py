"""Roles (§14) against the real processes: gunicorn (gevent), the ingest, Mosquitto and the database.

A viewer's token reads devices and events and is refused the acknowledgement (403 naming "operator"); an
operator's token acknowledges and silences, and is refused the audit log (403 naming "admin"); a token line
written before roles ("NAME:HASH") is an admin's; a viewer signed in through the form is refused the health
check like a viewer's token.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared import config as config_mod
from tests.support import Peer, wait_for
from tests.test_security_e2e import Http
from vesper_web.passwd import new_token, token_hash, user_line

PASSWORD = "correct horse battery"
VIEWER, VIEWER_LINE = new_token("wall-screen", "viewer")
OPERATOR, OPERATOR_LINE = new_token("night-shift", "operator")
OLD = "vsp_written_before_roles"
OLD_LINE = f"old-script:{token_hash(OLD)}"  # "NAME:HASH": an admin
AUTH = {
    "users": [user_line("watcher", PASSWORD, "viewer")],
    "tokens": [VIEWER_LINE, OPERATOR_LINE, OLD_LINE],
    "login_backoff_s": 0.2,
}
CRITICAL = {"subsystem": "Audio", "state": "CRITICAL", "msg": "amplifier hot"}
TIMEOUT = 30


def call(config: Path, token: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One request as a script sends it, with its bearer token; (status, JSON answer or None)."""
    url = f"http://{config_mod.load(config).web.bind}{path}"
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            raw, status = response.read(), response.status
    except urllib.error.HTTPError as error:
        raw, status = error.read(), error.code
    return status, json.loads(raw) if raw and raw.strip()[:1] in (b"{", b"[") else None


def refused(config: Path, token: str, method: str, path: str, needed: str, body: Any = None) -> None:
    """The request is 403 with a JSON error naming the role it needs."""
    status, answer = call(config, token, method, path, body)
    assert status == 403 and answer["role_needed"] == needed and needed in answer["error"], (path, status, answer)


def alert(config: Path, token: str) -> dict[str, Any] | None:
    """bell-1's Audio alert as the API shows it to this token, or None."""
    status, device = call(config, token, "GET", "/api/devices/bell-1")
    return next((a for a in device["alerts"] if a["subsystem"] == "Audio"), None) if status == 200 else None


def test_each_role_does_what_it_may(
    make_config: Callable[..., Path], start_ingest: Any, start_web: Any, peer: Peer
) -> None:
    config = make_config(auth=AUTH)
    start_ingest(config)
    start_web(config)
    peer.publish("vesper/bell-1/status/alerts", CRITICAL)
    wait_for(lambda: alert(config, VIEWER), TIMEOUT, "bell-1's alert, read by the viewer")

    # the viewer reads everything and changes nothing
    assert call(config, VIEWER, "GET", "/api/me")[1]["role"] == "viewer"
    status, listed = call(config, VIEWER, "GET", "/api/devices")
    assert status == 200 and [d["id"] for d in listed] == ["bell-1"]
    status, events = call(config, VIEWER, "GET", "/api/events?device=bell-1")
    assert status == 200 and any(e["type"] == "alert" for e in events["events"])
    refused(config, VIEWER, "POST", "/api/devices/bell-1/alerts/Audio/ack", "operator", {"note": "looked"})
    refused(config, VIEWER, "POST", "/api/silences", "operator", {"device": "bell-1", "duration_s": 600})
    assert alert(config, VIEWER)["acknowledged"] is None  # type: ignore[index]

    # the operator acknowledges and silences, and may not read the audit log
    status, acked = call(config, OPERATOR, "POST", "/api/devices/bell-1/alerts/Audio/ack", {"note": "on my way"})
    assert status == 200 and acked["acknowledged"]["by"] == "token night-shift", acked
    status, silence = call(config, OPERATOR, "POST", "/api/silences", {"device": "bell-1", "duration_s": 600})
    assert status == 201 and silence["created_by"] == "token night-shift", silence
    assert alert(config, VIEWER)["silenced_until"] == silence["ends_at"]  # type: ignore[index]
    refused(config, OPERATOR, "GET", "/api/audit", "admin")
    refused(config, OPERATOR, "POST", "/api/notify/test", "admin", {"channel": "any"})

    # a token line written before roles is an admin's: it ends the silence
    assert call(config, OLD, "GET", "/api/me")[1]["role"] == "admin"
    assert call(config, OLD, "DELETE", f"/api/silences/{silence['id']}")[0] == 204

    # a viewer signed in through the form: the same refusal from the console's own request
    browser = Http(f"http://{config_mod.load(config).web.bind}")
    assert browser.sign_in("watcher").status == 303
    answer = browser.button("bell-1")
    assert answer.status == 403 and answer.json()["role_needed"] == "operator"
    assert browser.get("/api/devices/bell-1").status == 200
