"""The session cookie: Flask's signed cookie, Secure over TLS, signed with a key every worker shares."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface

from shared import store
from shared.config import Config, ConfigError

KEY_FILE = "session.key"


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie, marked Secure whenever the request came over TLS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


def stable_key(path: Path) -> str:
    """The session key kept in `path`, created (0600) by whichever worker gets there first."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32) + "\n")
        try:
            os.link(tmp, path)  # atomic: a second worker racing here reads the first one's key
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    key = path.read_text().strip()
    if len(key) < 32:
        raise ConfigError(f"auth.secret_key: {path} holds fewer than 32 characters; delete it to make a new one")
    return key


def kept_key(url: str) -> str:
    """The session key kept in the PostgreSQL database, so that web processes on every host accept each other's."""
    conn = store.connect(url)
    try:
        with store.guarded():
            return store.kept_secret(conn, secrets.token_hex(32))
    finally:
        conn.close()


def _key(cfg: Config) -> str:
    """auth.secret_key if set; else the database's key (PostgreSQL) or the file beside the database (SQLite)."""
    if cfg.auth.secret_key:
        return cfg.auth.secret_key
    if cfg.database.url:
        return kept_key(cfg.database.url)
    return stable_key(Path(cfg.database.path).parent / KEY_FILE)


def init_app(app: Flask, cfg: Config) -> None:
    """Cookie settings; the signing key only when sign-in is configured (nothing else writes a session)."""
    app.config.update(
        SESSION_COOKIE_NAME="vesper_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_REFRESH_EACH_REQUEST=False,  # a sign-in lasts session_hours, however busy the page
        PERMANENT_SESSION_LIFETIME=timedelta(hours=cfg.auth.session_hours),
    )
    app.session_interface = SessionInterface()
    if cfg.auth.enabled:
        app.secret_key = _key(cfg)
