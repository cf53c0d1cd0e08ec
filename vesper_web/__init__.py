"""The web process: JSON API, live event stream and operator console (docs/architecture.md#web-process)."""

from vesper_web.app import create_app

__all__ = ["create_app"]
