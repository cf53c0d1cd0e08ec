"""One batch of messages applied in the caller's transaction: redeliveries skipped, a failing message isolated."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from shared import store
from shared.events import NewEvent, dumps, wire_json
from shared.topics import Topics
from shared.vocabulary import TOPIC_KINDS
from vesper_ingest import apply, classify, firmware, flooding, redelivery
from vesper_ingest.fleet import Fleet
from vesper_ingest.history import History
from vesper_ingest.sinks import Wire

log = logging.getLogger(__name__)

MSG_TRUNCATED = "alerts.msg_truncated"  # vesper_ingest_alerts_msg_truncated_total on /metrics
FLOOD_SUPPRESSED = "alerts.flood_suppressed"  # events a flooding device did not make (docs/events.md#flooding)


@dataclass(frozen=True)
class Inbound:
    """One received message, with what is needed to acknowledge it later."""

    topic: str
    payload: bytes
    retained: bool
    mid: int
    qos: int
    generation: int
    dup: bool = False


@dataclass
class Applied:
    """What a batch did: counts by name, rejections, and its stored events encoded for the sinks."""

    counts: Counter[str] = field(default_factory=Counter)
    rejected: list[classify.Rejected] = field(default_factory=list)
    events: list[Wire] = field(default_factory=list)


def store_events(
    conn: store.Connection, events: list[NewEvent], now: float, counts: Counter[str], history: History | None
) -> list[Wire]:
    """Insert the events as one set, in order, and the episodes they change (§13); returns them encoded once."""
    payloads = [dumps(ev.payload) for ev in events]
    rows = [(now, ev.type, ev.severity, ev.source_id, p) for ev, p in zip(events, payloads, strict=True)]
    ids = store.insert_events(conn, rows)
    for ev in events:
        counts[f"events.{ev.type}"] += 1
    if history is not None:
        history.follow((event_id, now, ev) for event_id, ev in zip(ids, events, strict=True))
        history.flush(conn)
    return [
        (event_id, wire_json(event_id, now, ev.type, ev.severity, ev.source_id, payload))
        for event_id, ev, payload in zip(ids, events, payloads, strict=True)
    ]


def _redelivered(conn: store.Connection, item: Inbound, kind: str, now: float, seen: dict[int, bytes]) -> bool:
    """True for the broker's redelivery of a message already applied (docs/architecture.md#redelivery).

    Checked for the topic kinds applied once (shared/vocabulary.py); `seen` holds this batch's
    (mid -> digest): the original may sit in the same batch as its repeat.
    """
    if not TOPIC_KINDS[kind].once or item.qos != 1:
        return False
    digest = redelivery.digest(item.topic, item.payload)
    if item.dup and (
        seen.get(item.mid) == digest or store.was_delivered(conn, item.mid, digest, now - redelivery.WINDOW_S)
    ):
        return True
    seen[item.mid] = digest
    return False


class Batch:
    """Applies messages with the ingest's writer, topics and fleet mirror."""

    def __init__(self, writer: store.Writer, topics: Topics, fleet: Fleet) -> None:
        self.writer = writer
        self.topics = topics
        self.fleet = fleet

    def apply(self, items: list[Inbound], now: float, careful: bool) -> Applied:
        """Apply every message inside the open transaction; `careful` isolates each under a savepoint.

        The batch's alert changes, last-seen times and events are written together at its end as
        sets (a few statements, whatever its size), the events in the order their messages came.
        Not in psycopg's pipeline mode: a leader hung in the middle of one has sent no Sync, and the
        server arms its idle timeouts only at a Sync, so it would never be cut off (lead.py).
        """
        conn = self.writer.conn
        out = Applied()
        events: list[NewEvent] = []
        delivered: dict[int, bytes] = {}
        for item in items:
            msg = classify.classify(self.topics, item.topic, item.payload, item.retained)  # pure: parsed once
            out.counts[f"messages.{msg.kind}"] += 1
            if isinstance(msg, classify.Rejected):
                out.rejected.append(msg)
            elif _redelivered(conn, item, msg.kind, now, delivered):
                out.counts["messages.redelivered"] += 1
            elif careful:
                self._apply_isolated(item.topic, msg, now, out)
            else:
                self._apply_one(msg, now, out, events)
        if suppressed := self.fleet.floods.take_unreported():  # the sweep's too, at the next batch
            out.counts[FLOOD_SUPPRESSED] += suppressed
        if refused := self.fleet.take_firmware_refused():
            out.counts[firmware.REFUSED] += refused  # the heartbeats were applied, their versions not stored
        self.fleet.flush(conn)
        store.record_delivered(conn, [(mid, digest, now) for mid, digest in delivered.items()])
        # careful: already stored, each in turn
        out.events.extend(store_events(conn, events, now, out.counts, self.fleet.history))
        return out

    def _apply_one(self, msg: classify.Message, now: float, out: Applied, events: list[NewEvent]) -> None:
        caused = apply.apply(self.fleet, self.writer.conn, msg, now)
        if isinstance(caused, classify.Rejected):
            out.rejected.append(caused)
            return
        if isinstance(msg, classify.Alert) and msg.truncated:
            out.counts[MSG_TRUNCATED] += 1  # applied with its msg cut to 1 KiB: counted, not refused
        events.extend(flooding.limited(self.fleet.floods, caused, now))  # the state changed whatever it says

    def _apply_isolated(self, topic: str, msg: classify.Message, now: float, out: Applied) -> None:
        """A bug met by one message loses only that message; a database error still fails the batch."""
        caused: list[NewEvent] = []
        try:
            with self.writer.isolated():  # the message's writes and events inside its savepoint, not at the batch's end
                self._apply_one(msg, now, out, caused)
                self.fleet.flush(self.writer.conn)
                out.events.extend(store_events(self.writer.conn, caused, now, out.counts, self.fleet.history))
        except store.StoreUnavailable:
            raise
        except Exception:
            self.fleet.discard()
            out.rejected.append(classify.Rejected("internal_error", "", None))
            log.exception("applying a message on %r failed", topic[:200])
