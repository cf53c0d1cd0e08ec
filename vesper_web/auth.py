"""Who is asking: operators' signed session cookies and scripts' bearer tokens, checked before every view.

The guard runs before every request, so a route added later is closed unless it is listed in
OPEN_ENDPOINTS. Without [auth] users or tokens (allowed on loopback only) a caller on this machine
is the local operator, and the Host must name loopback too, so a DNS-rebinding page cannot reach
the console; a caller from anywhere else (another address, a unix socket, a proxy's client) is
anonymous, as if sign-in were configured, whatever socket the server was started with.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Flask, abort, current_app, g, jsonify, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import Headers

from shared.config import Config
from vesper_web import csrf, roles, sessions
from vesper_web.credentials import Credentials
from vesper_web.paths import answers_json
from vesper_web.ratelimit import SignInLimit

audit = logging.getLogger("vesper_web.audit")

OPEN_ENDPOINTS = frozenset(
    {"healthz", "status.healthz_pipeline", "console.static", "console.rules", "login.login", "login.logout"}
)
MAX_BODY = 16 * 1024  # the largest legitimate body is the sign-in form, except for these endpoints:
LARGE_BODIES = {"registry.import_devices": 10 * 1024 * 1024}  # the registry's CSV import
FORWARDING = ("X-Forwarded-For", "X-Real-IP")  # plus Forwarded: for=, whose syntax is its own


@dataclass(frozen=True)
class Principal:
    """Who made a request: an operator ("user"), a script ("token") or anyone on loopback ("local"), and its role."""

    kind: str
    name: str
    role: str = "admin"
    sites: tuple[str, ...] | None = None  # a token limited to these sites (§14); None: every site

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


LOCAL = Principal("local", "(no sign-in configured)")


def loopback_host(host: str) -> bool:
    """True when a Host header names this machine's loopback interface."""
    if not host or any(c in host for c in "@/\\?#"):
        return False  # no browser sends these in a Host header
    name = urlsplit("//" + host).hostname or ""
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def loopback_address(address: str) -> bool:
    """True for an IP address on loopback (127.0.0.0/8, ::1, ::ffff:127.x); a path, a name or "" is not."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return (mapped or ip).is_loopback


def _node(value: str) -> str:
    """The address in a proxy header's node: '"[::1]:80"' -> '::1', '203.0.113.9:4711' -> '203.0.113.9'."""
    value = value.strip().strip('"')
    if value.startswith("["):
        return value[1:].partition("]")[0]
    return value.partition(":")[0] if value.count(":") == 1 else value


def forwarded_clients(headers: Headers) -> Iterator[str]:
    """Every client address a proxy named: X-Forwarded-For, X-Real-IP and Forwarded's for= (RFC 7239)."""
    for header in FORWARDING:
        for value in headers.getlist(header):
            yield from (_node(item) for item in value.split(","))
    for value in headers.getlist("Forwarded"):
        for pair in value.replace(",", ";").split(";"):
            key, _, node = pair.partition("=")
            if key.strip().lower() == "for":
                yield _node(node)


def loopback_peer() -> bool:
    """True when the caller is on this machine: a loopback peer (after ProxyFix) and no proxy naming one elsewhere."""
    if not loopback_address(request.remote_addr or ""):
        return False  # another host, a unix socket (no address at all), or the client a trusted proxy named
    return all(loopback_address(client) for client in forwarded_clients(request.headers))


def sign_in(name: str) -> None:
    """Start a fresh session for `name` (a new CSRF token too: nothing from before sign-in carries over)."""
    session.clear()
    session.permanent = True
    session["user"] = name
    session["fp"] = current_app.extensions["vesper_credentials"].fingerprint(name)
    csrf.token()


def principal() -> Principal | None:
    """Who this request is from, as the guard decided."""
    return g.get("principal")


def sites() -> tuple[str, ...] | None:
    """The sites this request may see and act on (a site-limited token's), or None for every device."""
    who = principal()
    return who.sites if who else None


def _from_bearer(creds: Credentials) -> Principal | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None  # e.g. Basic from a proxy in front: not ours to judge
    account = creds.token(value.strip())
    if account is None:
        abort(_unauthorized("invalid API token", 'Bearer realm="Vesper Console", error="invalid_token"'))
    return Principal("token", account.name, account.role, account.sites)


def _from_session(creds: Credentials) -> Principal | None:
    name = session.get("user")
    if not isinstance(name, str):
        return None
    fingerprint, account = creds.fingerprint(name), creds.user(name)
    if account is None or fingerprint is None or not hmac.compare_digest(fingerprint, str(session.get("fp", ""))):
        session.clear()  # the user was removed or has a new password or role
        return None
    return Principal("user", name, account.role)


def _unauthorized(message: str, challenge: str = 'Bearer realm="Vesper Console"') -> ResponseReturnValue:
    response = jsonify({"error": message})
    response.status_code = 401
    response.headers["WWW-Authenticate"] = challenge
    return response


def _local(open_: bool) -> Principal | None:
    """Without sign-in configured: the local operator if the caller is on this machine; anyone else is refused."""
    if not loopback_peer():
        if not open_:  # the answer a caller without credentials gets when sign-in is configured, minus the form
            abort(401, "no sign-in is configured, so this console answers only callers on this machine (loopback)")
        return None
    if request.endpoint != "healthz" and not loopback_host(request.host):
        abort(403, "without sign-in configured this console answers only on a loopback host name")
    return LOCAL


def _ask_for_credentials() -> ResponseReturnValue:
    """A console page sends the browser to the sign-in form; the API, the stream and any POST answer 401."""
    if request.method in ("GET", "HEAD") and not answers_json(request.path):
        target = request.full_path if request.query_string else request.path
        return redirect(url_for("login.login", next=target))
    return _unauthorized("sign in or send an API token (Authorization: Bearer)")


def _forbidden(who: Principal) -> ResponseReturnValue | None:
    """403 when the caller's role or site limit does not reach this endpoint (vesper_web/roles.py)."""
    why = roles.refusal(who.role, who.sites, request.endpoint)
    if why is None:
        return None
    if not answers_json(request.path):
        return render_template("forbidden.html", page="forbidden", why=why), 403
    response = jsonify({"error": why, "role_needed": roles.role_needed(who.role, request.endpoint)})
    response.status_code = 403
    return response


def guard() -> ResponseReturnValue | None:
    """before_request: bound the body, identify the caller (401 or sign-in page), its role, then check CSRF."""
    limit = LARGE_BODIES.get(request.endpoint or "", MAX_BODY)
    request.max_content_length = limit  # also bounds a body sent without Content-Length
    if (request.content_length or 0) > limit:
        abort(413, f"request bodies are limited to {limit} bytes")
    cfg: Config = current_app.config["VESPER"]
    open_ = request.endpoint in OPEN_ENDPOINTS or (request.path == "/metrics" and cfg.auth.metrics_public)
    if not cfg.auth.enabled:
        g.principal = _local(open_)
    else:
        creds: Credentials = current_app.extensions["vesper_credentials"]
        g.principal = _from_bearer(creds) or _from_session(creds)
        if g.principal is None and not open_:
            return _ask_for_credentials()
    if g.principal is not None and not open_:
        refused = _forbidden(g.principal)
        if refused is not None:
            return refused
    if g.principal is None or g.principal.kind != "token":  # a bearer token is never sent by a browser on its own
        csrf.protect(cfg.auth.enabled)
    return None


def init_app(app: Flask, cfg: Config) -> None:
    """Install the guard, the session cookie settings and the template helpers."""
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    sessions.init_app(app, cfg)
    app.extensions["vesper_credentials"] = Credentials(cfg.auth)
    app.extensions["vesper_login_backoff"] = SignInLimit(cfg.auth.login_backoff_s, cfg.auth.login_backoff_max_s)
    app.before_request(guard)
    app.context_processor(lambda: {"principal": principal(), "csrf_token": csrf.token})
