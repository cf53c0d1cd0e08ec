"""Sign-in and sign-out pages: a plain form, no script, and the same answer for any wrong part."""

from __future__ import annotations

import math
import time
from urllib.parse import urlsplit

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from vesper_web import audit_trail, auth
from vesper_web.ratelimit import SignInLimit

bp = Blueprint("login", __name__, template_folder="templates")

WRONG = "Wrong user name or password."
MAX_NAME = 64


def safe_next(target: str | None) -> str:
    """A path on this site to go to after sign-in; anything else (another host, a scheme, //x) is "/"."""
    if not target or len(target) > 2048 or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    if any(ord(c) < 32 or c == "\\" for c in target):
        return "/"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/"


def _client() -> str:
    return request.remote_addr or "unknown"


def _page(error: str | None, status: int, name: str = "", headers: dict[str, str] | None = None) -> ResponseReturnValue:
    nxt = safe_next(request.values.get("next"))
    return render_template("login.html", page="login", error=error, next=nxt, username=name), status, headers or {}


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """The sign-in form; failures back off per address (and name) and never say which part was wrong."""
    if not current_app.config["VESPER"].auth.enabled:
        return redirect(url_for("console.devices"))
    if request.method == "GET":
        current = auth.principal()
        if current is not None and current.kind == "user":
            return redirect(safe_next(request.args.get("next")))
        return _page(None, 200)
    name = request.form.get("username", "")[:MAX_NAME]
    password = request.form.get("password", "")
    limit: SignInLimit = current_app.extensions["vesper_login_backoff"]
    now = time.monotonic()
    wait = limit.wait(_client(), name, now)
    if wait > 0:
        retry = max(1, math.ceil(wait))
        auth.audit.warning("sign-in refused for %r from %s: too many failures, %d s left", name, _client(), retry)
        audit_trail.note(f"sign-in refused: too many failures, {retry} s left")
        return _page(f"Too many failed sign-ins. Try again in {retry} s.", 429, name, {"Retry-After": str(retry)})
    creds = current_app.extensions["vesper_credentials"]
    if creds.check_password(name, password):
        limit.succeeded(_client(), name)
        auth.sign_in(name)
        auth.audit.info("sign-in: user %s from %s", name, _client())
        account = creds.user(name)
        audit_trail.note("signed in", auth.Principal("user", name, account.role if account else "viewer"))
        return redirect(safe_next(request.form.get("next")), 303)
    delay, failures = limit.failed(_client(), name, now)
    auth.audit.warning(
        "sign-in failed for %r from %s (%d in a row; next try in %.1f s)", name, _client(), failures, delay
    )
    audit_trail.note(f"sign-in failed ({failures} in a row)")  # the entry's actor: the name tried (audit_trail)
    return _page(WRONG, 401, name)


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """End the session (the guard already checked this came from the console's own form)."""
    if not current_app.config["VESPER"].auth.enabled:
        return redirect(url_for("console.devices"), 303)
    current = auth.principal()
    if current is not None and current.kind == "user":
        auth.audit.info("sign-out: user %s from %s", current.name, _client())
        audit_trail.note("signed out")
    session.clear()
    return redirect(url_for("login.login"), 303)
