"""Event sinks: consumers of the committed events, each with its own persisted position.

A sink is told of every event in id order, after its commit (docs/architecture.md#sinks). To add
one, write a module here with a class that has the four members of `Sink`, and append it to the list
`self.sinks` that `Ingest.__init__` builds in vesper_ingest/service.py (one line per sink).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

Wire = tuple[int, str]  # (event id, event JSON)
Backlog = Callable[[int, int], list[Wire]]  # (after id, at most) -> stored events, oldest first


class Sink(Protocol):
    """What the outbox needs of a sink."""

    marker: str  # the meta key of its persisted position

    def start(self, position: int | None) -> None:
        """Begin after this event id (read from its marker at start; None the very first time)."""

    def deliver(self, fresh: list[Wire], backlog: Backlog) -> int:
        """Take every committed event after what it has taken (fresh: just committed, encoded); returns how many."""

    def position(self) -> int:
        """The highest id such that it and every id before it are done: what is persisted."""

    def idle(self) -> bool:
        """True when nothing taken is still in flight."""
