"""The "no sign-in only on loopback" rule (§8, §16): which binds reach beyond this machine."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from shared.config import Config


def is_loopback_bind(bind: str) -> bool:
    """True for host:port binds on a loopback address (127.0.0.0/8, ::1, localhost); unix sockets are not."""
    host, sep, _port = bind.rpartition(":")
    host = host.strip("[]").lower()
    if not sep or not host:
        return False  # ":8000" means every interface
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # another host name, "unix:/path", "fd://3": reachable from elsewhere


def exposure_error(cfg: Config, binds: Iterable[str], what: str = "web.bind") -> str | None:
    """Why the web must not start (listening beyond loopback with nobody to sign in); None if it may."""
    exposed = [bind for bind in binds if not is_loopback_bind(bind)]
    if not exposed or cfg.auth.enabled:
        return None
    return (
        f"{what} {exposed[0]} is not a loopback address and no authentication is configured: refusing to "
        "start. Add operators ([auth] users) or API tokens ([auth] tokens) with hashes from "
        "`python -m vesper_web.passwd`, or bind to 127.0.0.1."
    )
