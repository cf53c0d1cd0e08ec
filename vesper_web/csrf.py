"""Cross-site request forgery: a state-changing request must come from the console's own pages.

A browser request that changes something (the health check, sign-in, sign-out) needs both a
same-origin Origin (Referer when a browser sends no Origin) and proof that the page could read
our responses or set headers: the session's CSRF token (forms) or `X-Requested-With:
vesper-console` (the console's fetch calls; a cross-site form cannot set a header, and a
cross-site fetch that sets one is not sent without a CORS preflight we never answer).
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from flask import abort, request, session

HEADER = "X-Requested-With"
HEADER_VALUE = "vesper-console"
TOKEN_FIELD = "csrf_token"
TOKEN_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_PORTS = {"http": 80, "https": 443}
BROWSER_HEADERS = ("Origin", "Referer", "Cookie", "Sec-Fetch-Site", "Sec-Fetch-Mode")


def origin_of(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of a URL or Origin value; None for "null" or anything unparsable."""
    try:
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return None
    if parts.scheme.lower() not in DEFAULT_PORTS or not parts.hostname or port is None:
        return None
    return parts.scheme.lower(), parts.hostname.lower(), port


def same_origin() -> bool:
    """True when Origin (or, without one, Referer) names this very site."""
    if request.headers.get("Sec-Fetch-Site") in ("cross-site", "same-site"):
        return False
    claimed = request.headers.get("Origin") or request.headers.get("Referer")
    if not claimed:
        return False
    mine = origin_of(request.host_url)
    return mine is not None and origin_of(claimed) == mine


def token() -> str:
    """This session's CSRF token (created on first use), for forms."""
    if TOKEN_FIELD not in session:
        session[TOKEN_FIELD] = secrets.token_urlsafe(32)
    return str(session[TOKEN_FIELD])


def _token_matches() -> bool:
    expected = session.get(TOKEN_FIELD)
    sent = request.headers.get(TOKEN_HEADER) or request.form.get(TOKEN_FIELD, "")
    return bool(expected) and hmac.compare_digest(str(expected).encode(), sent.encode())


def from_browser() -> bool:
    """Whether anything marks the request as a browser's; every browser sends Origin on a POST."""
    return any(name in request.headers for name in BROWSER_HEADERS)


def protect(signed_in_mode: bool) -> None:
    """Abort with 403 unless this state-changing request is same-origin and carries a token or the header.

    Without sign-in configured (loopback only) a request with no browser header at all is a local
    script's (curl): there is no ambient credential a forged request could borrow, so it passes.
    """
    if request.method in SAFE_METHODS:
        return
    if not signed_in_mode and not from_browser():
        return
    if not same_origin():
        abort(403, "cross-site request refused: the Origin is not this console")
    if request.headers.get(HEADER) != HEADER_VALUE and not _token_matches():
        abort(403, f"request refused: send the form's CSRF token or the header {HEADER}: {HEADER_VALUE}")
