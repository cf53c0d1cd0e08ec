"""Every route x method x role (§14), generated from the app's URL map: refused (403 naming the role needed)
exactly when vesper_web/roles.py says the caller is below the need, and never otherwise.

A route added without a decision in roles.ENDPOINTS fails here. Each caller (users signed in and tokens of the
three roles, and tokens limited to a site) calls every rule through the Flask test client with valid-ish
arguments on a real database (SQLite, or PostgreSQL with VESPER_TEST_DATABASE=postgresql); whatever a call that
passes the guard answers (200, 400, 404, 503...), it is never a 403. A site-limited token is refused on "fleet"
endpoints only. Accounts' parsing and passwd's output are tested in test_roles_accounts.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.routing import Rule
from werkzeug.security import generate_password_hash

from shared import config as config_mod
from shared import store
from shared.accounts import ROLES, rank
from tests.conftest import database
from tests.support import ROOT
from vesper_web import create_app, roles
from vesper_web.auth import OPEN_ENDPOINTS
from vesper_web.passwd import token_hash

PASSWORD = "correct horse battery"
SITE = "http://localhost"
ARGS = {
    "device_id": "bell-1",
    "subsystem": "Audio",
    "silence_id": "1",
    "filename": "console.css",
    "asset": "swagger-ui.css",
}
BODIES: dict[tuple[str, str], dict[str, Any]] = {  # (endpoint, method) -> test client keyword arguments
    ("bulk.bulk", "POST"): {"json": {"filter": {}, "action": "health_check", "dry_run": True}},
    ("registry.import_devices", "POST"): {"data": "id,site\nbell-9,north\n", "content_type": "text/csv"},
    ("registry.patch_device", "PATCH"): {"json": {"notes": "rung"}, "content_type": "application/merge-patch+json"},
    ("lifecycle.acknowledge", "POST"): {"json": {"note": "on it"}},
    ("lifecycle.create_silence", "POST"): {"json": {"device": "bell-1", "duration_s": 3600}},
    ("notifications.notify_test", "POST"): {"json": {"channel": "nowhere"}},
    ("login.login", "POST"): {"data": {"username": "nobody", "password": "wrong"}},
}


@dataclass(frozen=True)
class Caller:
    """One way of calling: a user signed in or a bearer token, its role, and a token's sites."""

    kind: str
    role: str
    sites: tuple[str, ...] | None = None

    @property
    def name(self) -> str:
        """The account's name in the test config."""
        return f"{self.kind}-{self.role}" + ("-north" if self.sites else "")

    @property
    def token(self) -> str:
        """The bearer token of a token caller (the name is secret enough for a test)."""
        return f"vsp_{self.name}_secret"


CALLERS = [Caller(kind, role) for kind in ("user", "token") for role in ROLES]
CALLERS += [Caller("token", "viewer", ("north",)), Caller("token", "admin", ("north",))]


def token_entry(caller: Caller) -> dict[str, Any]:
    """The caller's [auth] tokens table, with its sites when it has any."""
    entry: dict[str, Any] = {"name": caller.name, "role": caller.role, "hash": token_hash(caller.token)}
    return entry | ({"sites": list(caller.sites)} if caller.sites else {})


def make_app(db_path: Path, tmp_path: Path) -> Flask:
    """An app with every caller configured, over a database that knows bell-1 (site north) with an alert."""
    hashed = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")  # cheap: this test signs in a lot
    users = [f"{c.name}:{c.role}:{hashed}" for c in CALLERS if c.kind == "user"]
    tokens = [token_entry(c) for c in CALLERS if c.kind == "token"]
    cfg = config_mod.from_dict({"auth": {"users": users, "tokens": tokens, "login_backoff_s": 0.01}})
    web = config_mod.WebConfig(command_wait_s=0)  # no ingest here: an acknowledgement or deletion answers 202
    app = create_app(config_mod.Config(database=database(db_path, tmp_path), auth=cfg.auth, web=web))
    conn = store.open_store(db_path)
    with store.write(conn):
        store.mark_alive(conn, "bell-1", 1_700_000_000.0)
        store.upsert_alert(conn, "bell-1", "Audio", "WARNING", "amp hot", 1_700_000_001.0)
        store.put_entry(
            conn,
            "bell-1",
            {"name": None, "site": "north", "tags": [], "notes": None, "heartbeat_timeout_s": None},
            1_700_000_002.0,
        )
    conn.close()
    return app


def calls(app: Flask) -> list[tuple[str, str, str]]:
    """(endpoint, method, path) for every rule and method of the URL map; deletions last (they remove bell-1)."""
    found = []
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, concrete(rule)))
    return sorted(found, key=lambda call: call[1] == "DELETE")


def concrete(rule: Rule) -> str:
    """The rule's path with each argument filled with a valid value (a default keeps its own)."""
    path = re.sub(r"<(?:[^:>]+:)?([a-z_]+)>", lambda m: ARGS[m.group(1)], rule.rule)
    return path.replace("//", "/" + ARGS["device_id"] + "/") if not rule.defaults else path


def refused(caller: Caller, endpoint: str) -> bool:
    """Whether the table says this caller is below the endpoint's need (the test's own reading of it)."""
    need = roles.ENDPOINTS[endpoint]
    if endpoint in OPEN_ENDPOINTS:
        return False
    return rank(caller.role) < rank(need.role) or (caller.sites is not None and need.scope == "fleet")


def client_for(app: Flask, caller: Caller) -> tuple[Any, dict[str, str]]:
    """A fresh test client for the caller (a user's session set as sign-in sets it) and its headers."""
    client = app.test_client()
    if caller.kind == "token":
        return client, {"Authorization": f"Bearer {caller.token}"}
    with client.session_transaction() as session:
        session["user"] = caller.name
        session["fp"] = app.extensions["vesper_credentials"].fingerprint(caller.name)
    return client, {"Origin": SITE, "X-Requested-With": "vesper-console", "Accept": "application/json"}


def check(app: Flask, caller: Caller, endpoint: str, method: str, path: str) -> str | None:
    """Call once; what is wrong with the answer, or None."""
    client, headers = client_for(app, caller)  # a fresh one each: sign-out and deletions end nothing else
    response = client.open(path, method=method, headers=headers, buffered=False, **BODIES.get((endpoint, method), {}))
    status, json_ = response.status_code, response.is_json
    body = (response.get_json() if json_ else response.get_data(as_text=True)) if status == 403 else None
    response.close()  # the stream answers for as long as it is read
    where = f"{caller.name} {method} {path} ({endpoint}): {status}"
    if not refused(caller, endpoint):
        return f"{where}, expected no 403: {body}" if status == 403 else None
    need = roles.ENDPOINTS[endpoint].role
    need = need if rank(caller.role) < rank(need) else None  # a site-limited token's refusal names no role
    if status != 403:
        return f"{where}, expected 403"
    if path.startswith(("/api/", "/events/stream", "/metrics")):
        ok = json_ and set(body) == {"error", "role_needed"} and body["role_needed"] == need and body["error"]
        return None if ok else f"{where}, expected JSON naming {need}: {body}"
    page = not json_ and "text/html" in response.content_type and 'id="forbidden-reason"' in body
    return None if page else f"{where}, expected the console's 403 page saying why"


def test_every_endpoint_is_decided(tmp_path: Path) -> None:
    """A route without a decision fails here (the guard would treat it as admin-only and fleet-wide)."""
    app = create_app(config_mod.from_dict({"database": {"path": str(tmp_path / "v.db")}}))
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert sorted(endpoints - set(roles.ENDPOINTS)) == []
    assert sorted(set(roles.ENDPOINTS) - endpoints) == []  # no decision outlives its route
    assert {e for e, need in roles.ENDPOINTS.items() if need == roles.OPEN} == OPEN_ENDPOINTS
    decided = [need for need in roles.ENDPOINTS.values() if need != roles.OPEN]
    assert all(need.role in ROLES and need.scope in ("sites", "any", "fleet") for need in decided)


@pytest.mark.parametrize("caller", CALLERS, ids=lambda c: c.name)
def test_every_route_for_every_role(db_path: Path, tmp_path: Path, caller: Caller) -> None:
    """Each rule x method: 403 naming the role needed exactly when the caller is below it, never otherwise."""
    app = make_app(db_path, tmp_path)
    table = calls(app)
    assert len(table) >= 40
    wrong = [problem for call in table if (problem := check(app, caller, *call))]
    assert wrong == []
    expected = sum(refused(caller, endpoint) for endpoint, _, _ in table)
    assert expected == 0 if caller.role == "admin" and not caller.sites else expected > 0


def test_a_site_limited_token_is_refused_on_fleet_endpoints_only() -> None:
    """The admin token limited to north meets 403 where the scope is fleet, and nowhere else."""
    north = Caller("token", "admin", ("north",))
    fleet = {e for e, need in roles.ENDPOINTS.items() if need.scope == "fleet" and e not in OPEN_ENDPOINTS}
    assert {e for e in roles.ENDPOINTS if refused(north, e)} == fleet
    assert {"notifications.notifications", "metrics.metrics", "audit.audit", "registry.import_devices"} <= fleet


def test_the_consoles_roles_are_the_configs() -> None:
    """console.js's copy of the role order (for may()) is shared/accounts.py's."""
    script = (ROOT / "vesper_web" / "static" / "console.js").read_text()
    copied = re.search(r"export const ROLES = \[([^\]]*)\]", script)
    assert copied is not None and re.findall(r'"([a-z]+)"', copied.group(1)) == list(ROLES)


def test_the_docs_table_is_the_url_maps(tmp_path: Path) -> None:
    """docs/teams.md's "Who may call what" lists every route and method with its decision, and nothing else."""
    app = create_app(config_mod.from_dict({"database": {"path": str(tmp_path / "v.db")}}))
    scope = {"sites": "its sites only", "any": "yes", "fleet": "403"}
    expected = set()
    for rule in app.url_map.iter_rules():
        if rule.defaults:
            continue  # the same endpoint under another path (an empty id, to be refused as one)
        need, path = roles.ENDPOINTS[rule.endpoint], re.sub(r"<(?:[^:>]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            expected.add((f"{method} {path}", need.role or "none (open)", scope[need.scope]))
    text = (ROOT / "docs" / "teams.md").read_text()
    documented = re.findall(r"^\| `([A-Z]+ /[^`]*)` \| ([^|]+?) \| ([^|]+?) \|$", text, re.M)
    assert sorted(documented) == sorted(expected)
