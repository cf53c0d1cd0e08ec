"""The paths that answer programs, not people: JSON errors, and 401 rather than the sign-in page."""

from __future__ import annotations

JSON_PREFIXES = ("/api/", "/events/stream", "/metrics")
JSON_PATHS = ("/api", "/healthz")


def answers_json(path: str) -> bool:
    """True for the API, the stream, /metrics and /healthz."""
    return path.startswith(JSON_PREFIXES) or path in JSON_PATHS
