"""History at an ingest's start (SPEC §13): the first one backfills from the retained events; each records its gap.

Backfill replays the events still stored through the follower (vesper_ingest/history.py), then opens what
the current state holds and no retained event opened (offline devices, active alerts older than the
events). History starts at the oldest retained event (meta `history_since`): the time before is not known.
A start after the last leader's sweep by more than `gap_s` records the stretch between as blind: no ingest
watched then, so it is unknown time, not down.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from shared import store
from shared.config import LivenessConfig
from shared.events import NewEvent
from shared.pipeline import STATE_KEY
from shared.store import episodes
from shared.store.dialect import Connection
from shared.store.episodes import Episode
from vesper_ingest.history import FOLLOWED, History

log = logging.getLogger(__name__)

CHUNK = 10_000


def backfill(conn: Connection, history: History, now: float) -> int:
    """Replay the retained events into episodes (once: meta history_since); returns how many were followed."""
    if episodes.history_since(conn) is not None:
        return 0
    first = episodes.oldest_event_at(conn)
    began = min(first, now) if first is not None else now
    after, followed = 0, 0
    while rows := episodes.events_of_types(conn, sorted(FOLLOWED), after, CHUNK):
        history.follow((int(i), float(ts), NewEvent(t, src, _payload(p))) for i, ts, t, src, p in rows)
        history.flush(conn)
        after, followed = int(rows[-1][0]), followed + len(rows)
    _open_current(conn, history, began)
    store.set_meta(conn, episodes.SINCE_KEY, repr(began))
    log.info("history: %d events followed into episodes; history starts %s", followed, began)
    return followed


def _payload(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _open_current(conn: Connection, history: History, began: float) -> None:
    """Offline devices and active alerts with no open episode: open since history began (their start is older)."""
    opened: list[Episode] = []
    for device_id, liveness, _ in store.liveness_all(conn):
        if liveness == "offline" and history.open.get(device_id, {}).get(("outage", "")) is None:
            opened.append(Episode("outage", device_id, "", began, "offline"))
    for device_id, subsystem, state, ack_at, ack_by in episodes.active_alerts(conn):
        if history.open.get(device_id, {}).get(("incident", subsystem)) is None:
            opened.append(Episode("incident", device_id, subsystem, began, state, ack_at=ack_at, ack_by=ack_by))
    episodes.write(conn, opened)
    history.reload(conn)


def gap_s(liveness: LivenessConfig) -> float:
    """How long the ingest may not watch before the stretch counts as blind (as §11's interruption does)."""
    return max(liveness.interrupted_after_s, 3 * liveness.sweep_interval_s)


def record_blind(conn: Connection, source_id: str, stretches: list[tuple[float, float]]) -> None:
    """Stretches no ingest watched (a gap before a start, a stalled store or process) as closed blind episodes."""
    episodes.write(conn, [Episode("blind", source_id, "", start, "blind", ended=end) for start, end in stretches])


def begin(conn: Connection, history: History, now: float, source_id: str, liveness: LivenessConfig) -> None:
    """An ingest's start, in one transaction: the backfill (the first time), then the gap since the last sweep."""
    backfill(conn, history, now)
    if (last := record_gap(conn, source_id, now, gap_s(liveness))) is not None:
        log.info("history: no ingest watched for %.0f s before this start: recorded as blind (unknown)", now - last)


def record_gap(conn: Connection, source_id: str, now: float, gap_s: float) -> float | None:
    """The stretch since the last leader's sweep, as a closed blind episode if longer than gap_s; returns its start."""
    raw = store.get_meta(conn, STATE_KEY)
    try:
        last = json.loads(raw).get("last_sweep_at") if raw else None
    except (ValueError, AttributeError):
        last = None
    if not isinstance(last, int | float) or now - last <= gap_s:
        return None
    record_blind(conn, source_id, [(float(last), now)])
    return float(last)
