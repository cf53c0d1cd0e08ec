"""Security of the web app through Flask's test client: sign-in, tokens, CSRF, headers, bounds, start-up refusal.

The real processes (gunicorn, broker, TLS) are in test_security_e2e.py, the browser in
test_security_browser.py; the pure parts (limits, origins, redirects) are tested as tables here.
"""

from __future__ import annotations

import re
import runpy
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import Headers
from werkzeug.security import check_password_hash, generate_password_hash

from shared import config as config_mod
from shared import exposure, store
from shared.config import ConfigError
from tests.support import ROOT
from vesper_web import create_app
from vesper_web.auth import forwarded_clients, loopback_address
from vesper_web.credentials import Credentials
from vesper_web.csrf import origin_of
from vesper_web.headers import CONTENT_SECURITY_POLICY
from vesper_web.login import safe_next
from vesper_web.passwd import new_token, user_line
from vesper_web.ratelimit import Backoff, Interval

PASSWORD = "correct horse battery"
# A cheap hash keeps these tests fast; the CLI's scrypt lines are tested below and in the e2e tests.
USER_LINE = "alice:" + generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
TOKEN, TOKEN_LINE = new_token("deploy-bot")
SITE = "http://localhost"


def make_cfg(tmp_path: Path, web: dict[str, Any] | None = None, **auth: Any) -> config_mod.Config:
    """A config on a fresh database; keyword arguments are [auth] keys."""
    raw: dict[str, Any] = {"database": {"path": str(tmp_path / "v.db")}, "web": web or {}}
    if auth:
        raw["auth"] = auth
    return config_mod.from_dict(raw)


def seeded_app(cfg: config_mod.Config) -> Flask:
    """An app whose database knows bell-1 with one alert."""
    app = create_app(cfg)
    conn = store.open_store(cfg.database.path)
    with store.write(conn):
        store.mark_alive(conn, "bell-1", 1_700_000_000.0)
        store.upsert_alert(conn, "bell-1", "Audio", "WARNING", "amp hot", 1_700_000_001.0)
    conn.close()
    return app


@pytest.fixture
def secured(tmp_path: Path) -> Flask:
    return seeded_app(make_cfg(tmp_path, users=[USER_LINE], tokens=[TOKEN_LINE], login_backoff_s=0.2))


@pytest.fixture
def open_app(tmp_path: Path) -> Flask:
    return seeded_app(make_cfg(tmp_path))


def csrf_of(client: FlaskClient) -> str:
    """The CSRF token of the client's session, read from the sign-in form (or, signed in, the sign-out form)."""
    page = client.get("/login", follow_redirects=True).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


def sign_in(client: FlaskClient, password: str = PASSWORD, user: str = "alice", **extra: str) -> Any:
    """Post the sign-in form as the browser would."""
    form = {"username": user, "password": password, "csrf_token": csrf_of(client), **extra}
    return client.post("/login", data=form, headers={"Origin": SITE})


BEARER = {"Authorization": f"Bearer {TOKEN}"}
BUTTON = {"Origin": SITE, "X-Requested-With": "vesper-console"}  # what the console's fetch sends


# --- start-up: secure by default -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bind", "loopback"),
    [
        ("127.0.0.1:8000", True),
        ("127.8.9.10:80", True),
        ("localhost:8000", True),
        ("[::1]:8000", True),
        ("0.0.0.0:8000", False),
        (":8000", False),
        ("[::]:8000", False),
        ("192.168.1.20:8000", False),
        ("console.example.com:443", False),
        ("unix:/run/vesper.sock", False),
        ("fd://3", False),
    ],
)
def test_loopback_binds(bind: str, loopback: bool) -> None:
    assert exposure.is_loopback_bind(bind) is loopback


def test_create_app_refuses_off_loopback_without_auth(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a loopback address and no authentication is configured"):
        create_app(make_cfg(tmp_path, web={"bind": "0.0.0.0:8000"}))
    with pytest.raises(ConfigError, match=r"\[auth\] users"):
        create_app(make_cfg(tmp_path, web={"bind": "10.1.2.3:8000"}))
    create_app(make_cfg(tmp_path, web={"bind": "0.0.0.0:8000"}, tokens=[TOKEN_LINE]))  # a token is enough
    create_app(make_cfg(tmp_path, web={"bind": "127.0.0.1:8000"}))  # the default: no setup


@pytest.mark.parametrize(
    ("auth", "key"),
    [
        ({"users": ["alice:hunter2"]}, r"auth.users\[0\]"),  # a plain password is refused, and not echoed
        ({"users": [USER_LINE, USER_LINE]}, "auth.users"),
        ({"users": ["al ice:" + USER_LINE.split(":", 1)[1]]}, r"auth.users\[0\]"),
        ({"tokens": ["bot:" + TOKEN]}, r"auth.tokens\[0\]"),
        ({"tokens": "bot"}, "auth.tokens"),
        ({"metrics_public": "yes"}, "auth.metrics_public"),
        ({"secret_key": "short"}, "auth.secret_key"),
        ({"login_backoff_max_s": 0.5}, "auth.login_backoff_max_s"),
    ],
)
def test_bad_auth_settings_name_their_key(auth: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=f"config key {key}") as raised:
        config_mod.from_dict({"auth": auth})
    assert "hunter2" not in str(raised.value)


def test_passwd_cli_prints_lines_the_config_accepts() -> None:
    run = [sys.executable, "-m", "vesper_web.passwd"]
    user = subprocess.run(
        [*run, "user", "ops", "--role", "operator"], input=PASSWORD + "\n", capture_output=True, text=True, cwd=ROOT
    )
    token = subprocess.run([*run, "token", "ci", "--role", "viewer"], capture_output=True, text=True, cwd=ROOT)
    assert user.returncode == 0 and token.returncode == 0, user.stderr + token.stderr
    line = user.stdout.strip()
    secret, token_line = token.stdout.split()
    cfg = config_mod.from_dict({"auth": {"users": [line], "tokens": [token_line]}})
    creds = Credentials(cfg.auth)
    assert check_password_hash(line.split(":", 2)[2], PASSWORD) and line.split(":")[1:3] == ["operator", "scrypt"]
    assert creds.check_password("ops", PASSWORD) and not creds.check_password("ops", PASSWORD + "x")
    found = creds.token(secret)
    assert found is not None and (found.name, found.role) == ("ci", "viewer") and creds.token(secret[:-1]) is None
    assert PASSWORD not in user.stdout + user.stderr
    short = subprocess.run(
        [*run, "user", "ops", "--role", "admin"], input="short\n", capture_output=True, text=True, cwd=ROOT
    )
    assert short.returncode != 0


# --- authentication --------------------------------------------------------------------------------

OPEN_ENDPOINTS = frozenset(
    {"healthz", "status.healthz_pipeline", "console.static", "console.rules", "login.login", "login.logout"}
)


def _concrete(rule: Any) -> str:
    """A URL for a rule, its variables filled with a valid device id."""
    return re.sub(r"<[^>]+>", "bell-1", rule.rule).replace("//", "/bell-1/")


def test_every_route_needs_credentials(secured: Flask) -> None:
    """Walks the URL map, so a route added later is covered (and closed) too."""
    client = secured.test_client()
    checked = 0
    for rule in secured.url_map.iter_rules():
        if rule.endpoint in OPEN_ENDPOINTS:
            continue
        url = _concrete(rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(url, method=method, headers={"Origin": SITE, "X-Requested-With": "vesper-console"})
            checked += 1
            if url.startswith(("/api/", "/events/stream", "/metrics")) or method != "GET":
                assert response.status_code == 401, (method, url, response.status_code)
                assert response.get_json()["error"] and response.headers["WWW-Authenticate"].startswith("Bearer")
            else:  # console pages send a browser to the sign-in form, and back afterwards
                assert response.status_code == 302, (method, url)
                assert response.headers["Location"].startswith("/login?next=")
    assert checked >= 9
    assert client.get("/healthz").status_code == 200
    with client.get("/static/console.css") as static:
        assert static.status_code == 200
    assert client.get("/api/nope").status_code == 401  # not even whether a route exists


@pytest.mark.parametrize(
    "url", ["/api/devices", "/api/devices/bell-1", "/api/devices/bell-1/alerts", "/api/events?device=bell-1", "/api/me"]
)
def test_api_answers_a_token_and_a_session(secured: Flask, url: str) -> None:
    client = secured.test_client()
    assert client.get(url).status_code == 401
    assert client.get(url, headers=BEARER).status_code == 200
    assert sign_in(client).status_code == 303
    assert client.get(url).status_code == 200


def test_who_is_asking(secured: Flask) -> None:
    client = secured.test_client()
    me = {"kind": "token", "name": "deploy-bot", "auth": True, "role": "admin", "sites": None}
    assert client.get("/api/me", headers=BEARER).get_json() == me
    sign_in(client)  # alice's line was written before roles ("NAME:HASH"): an admin
    assert client.get("/api/me").get_json() == me | {"kind": "user", "name": "alice"}


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ({"Authorization": "Bearer wrong"}, ""),
        ({"Authorization": f"Bearer {TOKEN}x"}, ""),
        ({"Authorization": f"Basic {TOKEN}"}, ""),
        ({"Authorization": TOKEN}, ""),
        ({}, f"?access_token={TOKEN}"),  # tokens never travel in URLs: one there is ignored
        ({}, f"?token={TOKEN}"),
        ({"Cookie": f"vesper_session={TOKEN}"}, ""),
    ],
)
def test_wrong_or_misplaced_tokens_are_401(secured: Flask, headers: dict[str, str], query: str) -> None:
    assert secured.test_client().get("/api/devices" + query, headers=headers).status_code == 401


def test_a_wrong_token_is_401_even_beside_a_session(secured: Flask) -> None:
    client = secured.test_client()
    sign_in(client)
    assert client.get("/api/devices", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_session_cookie_flags(secured: Flask) -> None:
    plain = secured.test_client()
    response = sign_in(plain)
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("vesper_session=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # http on loopback: a Secure cookie would never come back
    tls = secured.test_client()
    page = tls.get("/login", base_url="https://console.example").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    form = {"username": "alice", "password": PASSWORD, "csrf_token": token}
    response = tls.post(
        "/login", data=form, base_url="https://console.example", headers={"Origin": "https://console.example"}
    )
    assert response.status_code == 303
    assert "; Secure" in response.headers["Set-Cookie"] and "HttpOnly" in response.headers["Set-Cookie"]
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_secure_cookie_behind_a_tls_proxy(tmp_path: Path) -> None:
    app = seeded_app(make_cfg(tmp_path, web={"proxy_hops": 1}, users=[USER_LINE]))
    client = app.test_client()
    proxy = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "vesper.example", "X-Forwarded-For": "203.0.113.9"}
    token = re.search(r'value="([^"]+)"', client.get("/login", headers=proxy).get_data(as_text=True)).group(1)  # type: ignore[union-attr]
    form = {"username": "alice", "password": PASSWORD, "csrf_token": token}
    response = client.post("/login", data=form, headers={**proxy, "Origin": "https://vesper.example"})
    assert response.status_code == 303 and "; Secure" in response.headers["Set-Cookie"]


def test_wrong_password_and_unknown_user_look_the_same(secured: Flask) -> None:
    wrong_password = sign_in(secured.test_client(), password="not it", user="alice")
    secured.extensions["vesper_login_backoff"].addresses.reset("127.0.0.1")
    unknown_user = sign_in(secured.test_client(), password=PASSWORD, user="mallory")
    assert wrong_password.status_code == unknown_user.status_code == 401
    bodies = [r.get_data(as_text=True) for r in (wrong_password, unknown_user)]
    bodies = [re.sub(r'name="(csrf_token|username)" value="[^"]*"', "", body) for body in bodies]
    assert bodies[0] == bodies[1] and "Wrong user name or password." in bodies[0]
    assert "vesper_session" not in str(wrong_password.headers.get("Set-Cookie", "")) or "user" not in bodies[0]


def test_repeated_failures_slow_down(tmp_path: Path) -> None:
    """Each failure locks the address (and the name, for it) for twice as long (base 0.5 s here); the lock is 429."""
    secured = seeded_app(make_cfg(tmp_path, users=[USER_LINE], login_backoff_s=0.5))
    client = secured.test_client()
    token = csrf_of(client)

    def attempt(password: str) -> Any:
        form = {"username": "alice", "password": password, "csrf_token": token}
        return client.post("/login", data=form, headers={"Origin": SITE})

    assert attempt("wrong").status_code == 401
    locks = []
    for _ in range(2):
        started = time.monotonic()
        locked = attempt(PASSWORD)  # even the right password waits out the lock, from the address that failed
        assert locked.status_code == 429 and int(locked.headers["Retry-After"]) >= 1
        assert "Too many failed sign-ins" in locked.get_data(as_text=True)
        while (response := attempt("wrong")).status_code == 429:
            time.sleep(0.02)
        assert response.status_code == 401
        locks.append(time.monotonic() - started)
    assert locks[1] > locks[0] * 1.5, locks  # 0.5 s, then 1 s
    while attempt(PASSWORD).status_code == 429:
        time.sleep(0.05)
    assert client.get("/api/devices").status_code == 200  # and a success resets the streak
    assert secured.extensions["vesper_login_backoff"].names.failures("alice") == 0


def test_a_changed_password_ends_old_sessions(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path, users=[USER_LINE])
    client = seeded_app(cfg).test_client()
    sign_in(client)
    assert client.get("/api/devices").status_code == 200
    # The key file beside the database keeps sessions valid across a restart (and across workers) ...
    restarted = create_app(cfg)
    cookie = client.get_cookie("vesper_session")
    assert cookie is not None
    again = restarted.test_client()
    again.set_cookie("vesper_session", cookie.value)
    assert again.get("/api/devices").status_code == 200
    # ... until the operator's password changes.
    new_password = config_mod.from_dict({"auth": {"users": [user_line("alice", "another one!")]}}).auth
    changed = create_app(config_mod.replace(cfg, auth=new_password))
    later = changed.test_client()
    later.set_cookie("vesper_session", cookie.value)
    assert later.get("/api/devices").status_code == 401


def test_session_key_file_is_private_and_stable(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path, users=[USER_LINE])
    first, second = create_app(cfg), create_app(cfg)
    key = tmp_path / "session.key"
    assert key.stat().st_mode & 0o777 == 0o600
    assert first.secret_key == second.secret_key == key.read_text().strip()
    explicit = create_app(make_cfg(tmp_path, users=[USER_LINE], secret_key="k" * 40))
    assert explicit.secret_key == "k" * 40


def test_sign_out_ends_the_session(secured: Flask) -> None:
    client = secured.test_client()
    sign_in(client)
    page = client.get("/").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    assert client.post("/logout", headers={"Origin": SITE}).status_code == 403  # no token: forged
    assert client.get("/api/devices").status_code == 200
    response = client.post("/logout", data={"csrf_token": token}, headers={"Origin": SITE})
    assert response.status_code == 303 and response.headers["Location"] == "/login"
    assert client.get("/api/devices").status_code == 401


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/events?device=bell-1", "/events?device=bell-1"),
        ("/devices/bell-1", "/devices/bell-1"),
        (None, "/"),
        ("", "/"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("/ok\r\nSet-Cookie: x=1", "/"),
        ("events", "/"),
        ("/" + "a" * 3000, "/"),
    ],
)
def test_after_sign_in_only_local_paths(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_sign_in_redirects_to_next_but_never_off_site(secured: Flask) -> None:
    assert sign_in(secured.test_client(), next="/events").headers["Location"] == "/events"
    assert sign_in(secured.test_client(), next="//evil.example/x").headers["Location"] == "/"
    hostile = '"><img src=x onerror=alert(1)>'
    page = secured.test_client().get("/login", query_string={"next": "/" + hostile}).get_data(as_text=True)
    assert "<img src=x" not in page and "&#34;&gt;&lt;img src=x" in page


def test_no_auth_means_no_sign_in_page(open_app: Flask) -> None:
    client = open_app.test_client()
    assert client.get("/login").status_code == 302
    local = {"kind": "local", "name": "(no sign-in configured)", "auth": False, "role": "admin", "sites": None}
    assert client.get("/api/me").get_json() == local
    assert "signout" not in client.get("/").get_data(as_text=True)


# --- CSRF ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "data"),
    [
        ({"Origin": "http://evil.example", "X-Requested-With": "vesper-console"}, None),
        ({"Origin": "null", "X-Requested-With": "vesper-console"}, None),
        ({"Origin": "http://localhost:8000", "X-Requested-With": "vesper-console"}, None),  # another port
        ({"Origin": "https://localhost", "X-Requested-With": "vesper-console"}, None),  # another scheme
        ({"Referer": "http://evil.example/page", "X-Requested-With": "vesper-console"}, None),
        ({"Origin": SITE, "Sec-Fetch-Site": "cross-site", "X-Requested-With": "vesper-console"}, None),
        ({"Origin": SITE}, None),  # same origin, but neither token nor header
        ({"Origin": SITE, "X-Requested-With": "XMLHttpRequest"}, None),
        ({"Origin": SITE}, {"csrf_token": "guessed"}),
        ({"X-Requested-With": "vesper-console"}, None),  # a signed-in browser without Origin or Referer
        ({"Origin": "http://evil.example"}, {"csrf_token": "x", "device": "bell-1"}),  # a cross-site form
    ],
)
def test_forged_health_checks_are_403_when_signed_in(secured: Flask, headers: dict[str, str], data: Any) -> None:
    client = secured.test_client()
    sign_in(client)
    response = client.post("/api/devices/bell-1/health-check", headers=headers, data=data)
    assert response.status_code == 403 and "refused" in response.get_json()["error"]


@pytest.mark.parametrize(
    "headers",
    [
        BUTTON,  # the console's own button
        {"Referer": SITE + "/devices/bell-1", "X-Requested-With": "vesper-console"},
    ],
)
def test_the_consoles_request_passes_csrf(secured: Flask, headers: dict[str, str]) -> None:
    client = secured.test_client()
    sign_in(client)
    response = client.post("/api/devices/bell-1/health-check", headers=headers)
    assert response.status_code == 503  # past the guard; no bridge in a test client


def test_a_form_token_passes_csrf(secured: Flask) -> None:
    client = secured.test_client()
    sign_in(client)
    token = csrf_of(client)
    response = client.post("/api/devices/bell-1/health-check", data={"csrf_token": token}, headers={"Origin": SITE})
    assert response.status_code == 503


def test_a_token_needs_no_origin(secured: Flask) -> None:
    """A bearer token is never attached by a browser on its own, so a script sends just the token."""
    assert secured.test_client().post("/api/devices/bell-1/health-check", headers=BEARER).status_code == 503


def test_sign_in_form_is_csrf_protected(secured: Flask) -> None:
    client = secured.test_client()
    token = csrf_of(client)
    form = {"username": "alice", "password": PASSWORD}
    with_token = {**form, "csrf_token": token}
    assert client.post("/login", data=form, headers={"Origin": SITE}).status_code == 403
    assert client.post("/login", data=with_token, headers={"Origin": "http://evil.example"}).status_code == 403
    stranger = secured.test_client()  # the token belongs to another session
    assert stranger.post("/login", data=with_token, headers={"Origin": SITE}).status_code == 403
    assert client.post("/login", data=with_token, headers={"Origin": SITE}).status_code == 303


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Origin": "http://evil.example", "X-Requested-With": "vesper-console"}, 403),
        ({"Origin": "http://evil.example"}, 403),
        ({"Origin": SITE}, 403),  # a browser on loopback still needs the header
        ({"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}, 403),
        (BUTTON, 503),
        ({}, 503),  # no browser header at all: a local script (curl); nothing ambient to borrow
    ],
)
def test_csrf_without_sign_in_configured(open_app: Flask, headers: dict[str, str], status: int) -> None:
    assert open_app.test_client().post("/api/devices/bell-1/health-check", headers=headers).status_code == status


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8000", "10.0.0.5:8000", "127.0.0.1.evil.example", "evil@127.0.0.1"]
)
def test_dns_rebinding_is_refused_without_sign_in(open_app: Flask, host: str) -> None:
    """A page whose name re-resolves to 127.0.0.1 is same-origin with itself, but its Host gives it away."""
    client = open_app.test_client()
    assert client.get("/api/devices", headers={"Host": host}).status_code == 403
    assert client.get("/", headers={"Host": host}).status_code == 403
    assert client.get("/healthz", headers={"Host": host}).status_code == 200
    for loopback in ("localhost:8000", "127.0.0.1:8000", "[::1]:8000"):
        assert client.get("/api/devices", headers={"Host": loopback}).status_code == 200


# --- without sign-in: only callers on this machine, whatever the socket ---------------------------------


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.3", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),  # a dual-stack socket's IPv4 loopback caller
        ("10.0.0.5", False),
        ("::ffff:10.0.0.5", False),
        ("2001:db8::1", False),
        ("", False),  # a unix socket's peer has no address
        ("localhost", False),  # a name is not an address
        ("unknown", False),
    ],
)
def test_loopback_address(address: str, loopback: bool) -> None:
    assert loopback_address(address) is loopback


@pytest.mark.parametrize(
    ("headers", "clients"),
    [
        ({}, []),
        ({"X-Forwarded-For": "203.0.113.9, 127.0.0.1"}, ["203.0.113.9", "127.0.0.1"]),
        ({"X-Forwarded-For": "203.0.113.9:4711"}, ["203.0.113.9"]),
        ({"X-Real-IP": "10.0.0.5"}, ["10.0.0.5"]),
        ({"Forwarded": 'for="[2001:db8::1]:4711";proto=https, for=127.0.0.1'}, ["2001:db8::1", "127.0.0.1"]),
        ({"Forwarded": "For=_hidden;by=127.0.0.1"}, ["_hidden"]),
        ({"Forwarded": "proto=https"}, []),
    ],
)
def test_forwarded_clients(headers: dict[str, str], clients: list[str]) -> None:
    assert list(forwarded_clients(Headers(headers))) == clients


@pytest.mark.parametrize(
    ("remote", "headers"),
    [
        ("10.0.0.5", {}),  # a socket that is not loopback (systemd's, a supervisor's)
        ("", {}),  # a unix socket: the peer has no address
        ("127.0.0.1", {"X-Forwarded-For": "203.0.113.9"}),  # a proxy on this machine, web.proxy_hops unset
        ("127.0.0.1", {"X-Forwarded-For": "203.0.113.9, 127.0.0.1"}),
        ("127.0.0.1", {"X-Real-IP": "203.0.113.9"}),
        ("127.0.0.1", {"Forwarded": 'for="[2001:db8::1]:4711"'}),
        ("127.0.0.1", {"Forwarded": "for=unknown"}),  # a proxy that will not say is not saying "loopback"
    ],
)
def test_without_auth_a_caller_from_elsewhere_is_refused(open_app: Flask, remote: str, headers: dict[str, str]) -> None:
    client = open_app.test_client()
    client.environ_base["REMOTE_ADDR"] = remote
    for path in ("/api/summary", "/api/devices", "/api/me", "/events/stream", "/metrics"):
        reply = client.get(path, headers=headers)
        assert reply.status_code == 401, path
        assert "only callers on this machine" in reply.get_json()["error"], path
    command = client.post("/api/devices/bell-1/health-check", headers={**headers, **BUTTON})
    assert command.status_code == 401 and command.is_json  # refused before the bridge is asked (it would be 503)
    page = client.get("/", headers=headers)
    assert page.status_code == 401 and "only callers on this machine" in page.get_data(as_text=True)
    assert client.get("/login", headers=headers).status_code == 302  # to "/", itself refused: no form to fill
    assert client.get("/healthz", headers=headers).status_code == 200  # open as it is with sign-in configured
    with client.get("/static/console.css", headers=headers) as static:
        assert static.status_code == 200


@pytest.mark.parametrize(
    ("remote", "headers"),
    [
        ("127.0.0.1", {}),
        ("127.0.0.3", {}),
        ("::1", {}),
        ("127.0.0.1", {"X-Forwarded-For": "127.0.0.1"}),
        ("127.0.0.1", {"Forwarded": 'for="[::1]:4711"'}),
    ],
)
def test_without_auth_a_caller_on_this_machine_is_the_local_operator(
    open_app: Flask, remote: str, headers: dict[str, str]
) -> None:
    client = open_app.test_client()
    client.environ_base["REMOTE_ADDR"] = remote
    assert client.get("/api/me", headers=headers).get_json()["kind"] == "local"
    assert client.get("/api/summary", headers=headers).status_code == 200


def test_without_auth_behind_a_counted_proxy_the_forwarded_client_decides(tmp_path: Path) -> None:
    """web.proxy_hops makes X-Forwarded-For the peer (ProxyFix): a client elsewhere is refused, a local one is not."""
    client = seeded_app(make_cfg(tmp_path, web={"proxy_hops": 1})).test_client()
    assert client.get("/api/summary", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 401
    assert client.get("/api/summary", headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 200
    assert client.get("/api/summary").status_code == 200


@pytest.fixture
def gunicorn_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """gunicorn.conf.py's hooks, loaded as gunicorn loads them, with a config that has no [auth]."""
    (tmp_path / "vesper.toml").write_text(f'[database]\npath = "{tmp_path / "v.db"}"\n')
    monkeypatch.setenv("VESPER_CONFIG", str(tmp_path / "vesper.toml"))
    monkeypatch.setattr("logging.basicConfig", lambda **kwargs: None)  # the test's logging stays pytest's
    return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def _listening(family: socket.AddressFamily, address: Any) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.bind(address)
    sock.listen(1)
    return sock


@pytest.mark.parametrize(
    ("family", "address", "expected"),
    [
        (socket.AF_INET, ("127.0.0.1", 0), "127.0.0.1:"),
        (socket.AF_INET, ("127.0.0.5", 0), "127.0.0.5:"),
        (socket.AF_INET, ("0.0.0.0", 0), "0.0.0.0:"),
        (socket.AF_INET6, ("::1", 0), "[::1]:"),
        (socket.AF_INET6, ("::", 0), "[::]:"),
        (socket.AF_UNIX, "web.sock", "unix:"),
        (socket.AF_UNIX, "\0vesper-abstract", "unix:@vesper-abstract"),
    ],
)
def test_gunicorn_reads_where_its_sockets_really_listen(
    gunicorn_conf: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, family: Any, address: Any, expected: str
) -> None:
    monkeypatch.chdir(tmp_path)  # a short relative path for the unix socket
    try:
        sock = _listening(family, address)
    except OSError as exc:
        pytest.skip(f"cannot listen on {address}: {exc}")  # e.g. no IPv6 on this machine
    with sock:
        where = gunicorn_conf["listening_on"](sock)
        assert where.startswith(expected)
        loopback = exposure.is_loopback_bind(where)
        assert loopback is (expected.startswith(("127.", "[::1]")))
        server = _Arbiter([sock])
        if loopback:
            gunicorn_conf["when_ready"](server)
            assert server.halted is None
        else:
            with pytest.raises(SystemExit):
                gunicorn_conf["when_ready"](server)
            assert server.halted == 2


class _Arbiter:
    """The two things when_ready reads of gunicorn's arbiter, and its halt."""

    def __init__(self, listeners: list[socket.socket]) -> None:
        self.LISTENERS = listeners
        self.systemd = True
        self.halted: int | None = None

    def halt(self, reason: str, exit_status: int) -> None:
        self.halted = exit_status
        raise SystemExit(exit_status)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://localhost", ("http", "localhost", 80)),
        ("http://LOCALHOST:80/x?y", ("http", "localhost", 80)),
        ("https://a.example", ("https", "a.example", 443)),
        ("http://[::1]:8000", ("http", "::1", 8000)),
        ("null", None),
        ("", None),
        ("file:///etc/passwd", None),
        ("javascript:alert(1)", None),
        ("http://a.example:99999", None),
    ],
)
def test_origin_of(url: str, expected: Any) -> None:
    assert origin_of(url) == expected


# --- pure limits -----------------------------------------------------------------------------------


def test_backoff_doubles_to_its_cap_and_resets() -> None:
    backoff = Backoff(base_s=1.0, max_s=5.0)
    assert backoff.wait("k", 0.0) == 0.0
    assert [backoff.fail("k", t) for t in (0.0, 10.0, 20.0, 30.0, 40.0)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert backoff.wait("k", 41.0) == 4.0 and backoff.wait("other", 41.0) == 0.0
    backoff.reset("k")
    assert backoff.wait("k", 41.0) == 0.0 and backoff.fail("k", 41.0) == 1.0


def test_backoff_forgets_old_streaks_and_stays_bounded() -> None:
    backoff = Backoff(base_s=1.0, max_s=60.0, max_keys=100)
    backoff.fail("k", 0.0)
    backoff.fail("k", 1.0)
    assert backoff.fail("k", 1.0 + 3601) == 1.0  # an hour later the streak starts again
    for i in range(1000):
        backoff.fail(f"user:{i}", 5000.0)
    assert len(backoff._streaks) == 100


def test_a_lock_from_elsewhere_never_holds_a_clean_address(tmp_path: Path) -> None:
    """The issue's case through the app: failures from 10.0.0.2 lock it, not alice's right password from 10.0.0.3."""
    secured = seeded_app(make_cfg(tmp_path, users=[USER_LINE], login_backoff_s=30.0, login_backoff_max_s=60.0))
    guesser = secured.test_client()
    guesser.environ_base["REMOTE_ADDR"] = "10.0.0.2"
    assert sign_in(guesser, password="wrong").status_code == 401
    assert sign_in(guesser).status_code == 429  # 30 s: no waiting it out in this test
    owner = secured.test_client()
    owner.environ_base["REMOTE_ADDR"] = "10.0.0.3"
    assert sign_in(owner).status_code == 303 and owner.get("/api/me").get_json()["name"] == "alice"


def test_interval_one_per_key_per_window() -> None:
    limit = Interval(10.0)
    assert limit.take("bell-1", 0.0) == 0.0
    assert limit.take("bell-1", 3.0) == 7.0 and limit.take("bell-2", 3.0) == 0.0
    assert limit.first_refusal("bell-1") and not limit.first_refusal("bell-1")
    assert limit.take("bell-1", 10.0) == 0.0 and limit.first_refusal("bell-1")
    limit.release("bell-1")  # the command was not sent: the next request may try at once
    assert limit.take("bell-1", 10.5) == 0.0


# --- headers, bounds, ids --------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/", "/devices/bell-1", "/events", "/login", "/api/devices", "/healthz", "/api/nope"])
def test_security_headers(secured: Flask, url: str) -> None:
    client = secured.test_client()
    sign_in(client)
    headers = client.get(url).headers
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY and "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "camera=()" in headers["Permissions-Policy"]
    assert headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in headers  # only over TLS


def test_pages_hold_no_inline_script(secured: Flask) -> None:
    client = secured.test_client()
    sign_in(client)
    for url in ("/", "/devices/bell-1", "/events", "/login"):
        page = client.get(url).get_data(as_text=True)
        assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page) == []  # every script is a file
        assert re.findall(r"<[^>]+\son[a-z]+\s*=", page) == [] and "javascript:" not in page


def test_large_bodies_are_413(open_app: Flask, secured: Flask) -> None:
    body = b"x" * (17 * 1024)
    assert open_app.test_client().post("/api/devices/bell-1/health-check", data=body).status_code == 413
    assert secured.test_client().post("/login", data={"username": "a", "password": "p" * 20_000}).status_code == 413


@pytest.mark.parametrize(
    "path", ["%2B", "%23", "a%2Fb", "%00", "", "x" * 65, "x" * 70_000, "bell-1%2F..%2Fbell-2", "%3Cimg%3E"]
)
def test_bad_ids_on_the_command_are_400(open_app: Flask, path: str) -> None:
    response = open_app.test_client().post(f"/api/devices/{path}/health-check", headers=BUTTON)
    assert response.status_code == 400 and "invalid device id" in response.get_json()["error"]


@pytest.mark.parametrize(
    "url",
    [
        "/devices/javascript:alert(1)",
        "/devices/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E",
        "/devices/%3C%2Fscript%3E",
        "/devices/bell%00",
        "/devices/" + "x" * 70_000,
    ],
)
def test_console_pages_refuse_bad_ids(open_app: Flask, url: str) -> None:
    response = open_app.test_client().get(url)
    assert response.status_code == 404
    assert "onerror" not in response.get_data(as_text=True) and "alert(1)" not in response.get_data(as_text=True)


def test_event_filter_refuses_a_bad_id_without_echoing_it(open_app: Flask) -> None:
    client = open_app.test_client()
    response = client.get("/events", query_string={"device": "<img src=x onerror=alert(1)>"})
    assert response.status_code == 400 and "onerror" not in response.get_data(as_text=True)
    assert client.get("/events/stream", query_string={"device": "a+b"}).status_code == 400
    assert client.get("/api/events", query_string={"device": "#"}).status_code == 400
    assert client.get("/api/events", query_string={"limit": "9" * 40}).status_code == 400


def test_a_valid_but_scheme_like_id_only_ever_becomes_a_path(open_app: Flask) -> None:
    """ "javascript:alert" passes the id rule (letters and a colon): links to it must stay on this site."""
    page = open_app.test_client().get("/events?device=javascript:alert").get_data(as_text=True)
    hrefs = re.findall(r'href="([^"]*)"', page)
    assert "/devices/javascript:alert" in hrefs
    assert all(h.startswith("/") for h in hrefs), hrefs


def test_metrics_follow_the_config(tmp_path: Path) -> None:
    closed = seeded_app(make_cfg(tmp_path, tokens=[TOKEN_LINE])).test_client()
    assert closed.get("/metrics").status_code == 401
    assert closed.get("/metrics", headers=BEARER).status_code == 200  # a scraper with a token
    public = seeded_app(make_cfg(tmp_path, tokens=[TOKEN_LINE], metrics_public=True)).test_client()
    assert public.get("/metrics").status_code == 200
    assert public.get("/api/devices").status_code == 401  # nothing else opens with it
