"""The events table as an outbox: every sink is handed the committed events in id order, from its own position."""

from __future__ import annotations

from shared import store
from shared.events import wire_json
from vesper_ingest.sinks import Sink, Wire


class Outbox:
    """Hands committed events to each sink and persists each sink's position inside the ingest's transactions."""

    def __init__(self, conn: store.Connection, sinks: list[Sink]) -> None:
        self.conn = conn
        self.sinks = sinks
        self._saved: dict[str, int] = {}
        for sink in sinks:
            saved = store.get_meta(conn, sink.marker)
            sink.start(None if saved is None else int(saved))
            self._saved[sink.marker] = sink.position()

    def _backlog(self, after: int, limit: int) -> list[Wire]:
        return [(r[0], wire_json(*r)) for r in store.event_rows_after(self.conn, after, limit)]

    def flush(self, fresh: list[Wire] | None = None) -> None:
        """Hand every sink what was committed after its position; `fresh` are the caller's just-committed events."""
        for sink in self.sinks:
            sink.deliver(fresh or [], self._backlog)

    def save_markers(self, conn: store.Connection) -> None:
        """Persist each sink's position that moved, inside the caller's transaction."""
        for sink in self.sinks:
            position = sink.position()
            if position != self._saved[sink.marker]:
                store.set_meta(conn, sink.marker, str(position))
                self._saved[sink.marker] = position

    def idle(self) -> bool:
        """True when no sink has anything in flight."""
        return all(sink.idle() for sink in self.sinks)
