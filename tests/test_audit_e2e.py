"""The audit log (§14) against the real processes: gunicorn (gevent), the ingest, Mosquitto and the database.

An operator signs in through /login from one address, acknowledges an alert and creates a silence with the
console's own requests; a sign-in fails from another address; an old-format token line ("NAME:sha256:HEX") reads
the log as an admin and ends the silence. The admin's GET /api/audit (and its CSV) holds each with actor, role,
address and status, the failed sign-in with the name tried, and the password appears nowhere: not in the API's
answer, the CSV, or either process's log.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared import config as config_mod
from tests.support import Peer, Process, wait_for
from tests.test_security_e2e import Http
from vesper_web.passwd import token_hash, user_line

PASSWORD = "correct horse battery"
WRONG = "Tr0ub4dor&3-wrong-password"
OLD = "vsp_an-old-script-token"
OLD_LINE = f"old-script:{token_hash(OLD)}"  # written before roles: "NAME:sha256:HEX", an admin
AUTH = {"users": [user_line("olga", PASSWORD, "operator")], "tokens": [OLD_LINE], "login_backoff_s": 0.2}
CRITICAL = {"subsystem": "Audio", "state": "CRITICAL", "msg": "amplifier hot"}
OPERATOR_AT, GUESSER_AT = "127.0.0.3", "127.0.0.5"  # Linux routes all of 127/8 to lo
TIMEOUT = 30


def console_call(browser: Http, method: str, path: str, body: Any) -> Any:
    """What the console's fetch sends (same origin, X-Requested-With, JSON); the answer, which must succeed."""
    headers = {"Origin": browser.origin, "X-Requested-With": "vesper-console", "Content-Type": "application/json"}
    reply = browser.request(method, path, headers, json.dumps(body))
    assert reply.status in (200, 201), (path, reply.status, reply.text)
    return reply.json()


def entries(admin: Http, query: str = "") -> list[dict[str, Any]]:
    reply = admin.request("GET", f"/api/audit{query}", {"Authorization": f"Bearer {OLD}"})
    assert reply.status == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


def test_an_admin_reads_who_did_what_from_where(
    make_config: Callable[..., Path], start_ingest: Callable[..., Process], start_web: Callable[..., Process],
    peer: Peer,
) -> None:  # fmt: skip
    config = make_config(auth=AUTH)
    ingest, web = start_ingest(config), start_web(config)
    base = f"http://{config_mod.load(config).web.bind}"
    admin = Http(base)
    peer.publish("vesper/bell-1/status/alerts", CRITICAL)

    def active() -> bool:
        reply = admin.request("GET", "/api/devices/bell-1", {"Authorization": f"Bearer {OLD}"})
        return reply.status == 200 and any(a["subsystem"] == "Audio" for a in reply.json()["alerts"])

    wait_for(active, TIMEOUT, "bell-1's alert")

    # the operator, signed in from 127.0.0.3, acknowledges and silences; a guess from 127.0.0.5 fails
    operator = Http(base, source=OPERATOR_AT)
    assert operator.sign_in("olga").status == 303
    acked = console_call(operator, "POST", "/api/devices/bell-1/alerts/Audio/ack", {"note": "on my way"})
    assert acked["acknowledged"]["by"] == "user olga"
    silence = console_call(operator, "POST", "/api/silences", {"device": "bell-1", "duration_s": 600})
    assert operator.get("/api/audit").status == 403
    assert Http(base, source=GUESSER_AT).sign_in("olga", WRONG).status == 401

    # the old-format token is an admin's: it reads the log and ends the silence (audited as an admin)
    assert admin.request("GET", "/api/me", {"Authorization": f"Bearer {OLD}"}).json()["role"] == "admin"
    reply = admin.request("DELETE", f"/api/silences/{silence['id']}", {"Authorization": f"Bearer {OLD}"})
    assert reply.status == 204

    log = entries(admin)[::-1]  # oldest first
    seen = [(e["actor"], e["kind"], e["role"], e["address"], e["method"], e["action"], e["status"]) for e in log]
    assert seen == [
        ("olga", "user", "operator", OPERATOR_AT, "POST", "login.login", 303),
        ("olga", "user", "operator", OPERATOR_AT, "POST", "lifecycle.acknowledge", 200),
        ("olga", "user", "operator", OPERATOR_AT, "POST", "lifecycle.create_silence", 201),
        ("olga", "anonymous", None, GUESSER_AT, "POST", "login.login", 401),
        ("old-script", "token", "admin", "127.0.0.1", "DELETE", "lifecycle.expire_silence", 204),
    ]
    assert log[1]["target"] == "/api/devices/bell-1/alerts/Audio/ack"
    assert log[2]["detail"] == "device=bell-1 duration_s=600"
    assert log[3]["detail"] == "sign-in failed (1 in a row)"
    assert [e["action"] for e in entries(admin, "?actor=olga&action=login.login")] == ["login.login"] * 2

    # the CSV holds the same rows; the password is nowhere: the API, the CSV, the processes' logs
    reply = admin.request("GET", "/api/audit?format=csv", {"Authorization": f"Bearer {OLD}"})
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(reply.text)))
    assert [(r["actor"], r["address"], r["status"]) for r in rows[::-1]] == [(s[0], s[3], str(s[6])) for s in seen]
    everything = json.dumps(log) + reply.text + web.output() + ingest.output()
    assert WRONG not in everything and PASSWORD not in everything
