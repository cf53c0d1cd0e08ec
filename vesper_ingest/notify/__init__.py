"""Notifications: the grouping of events into messages (pure) and their delivery to Apprise channels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared import store
from shared.config import Config


def notifier_for(cfg: Config, writer: store.Writer, clock: Callable[[], float]) -> Any:
    """The notifier when channels are configured (imported only then: Apprise is slow to import), else None."""
    if not cfg.notify.channels:
        return None
    from vesper_ingest.notify.notifier import Notifier

    return Notifier(cfg, writer, clock)
