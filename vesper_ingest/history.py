"""History's follower (SPEC §13): the events a transaction stores open, change and close episodes in it.

Pure but for load and flush: the open episodes are held in memory (part of the fleet's mirror, reloaded
after a rollback) and what a batch changed is written with its events, in the same transaction
(shared/store/episodes.py). An event is followed by its type alone; time is passed in.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from shared.events import NewEvent
from shared.severity import ALERT_SEVERITY, worse
from shared.store import episodes
from shared.store.dialect import Connection
from shared.store.episodes import Episode

OPENS = {"alert": "incident", "device_offline": "outage", "monitoring_interrupted": "blind"}
CLOSES = {"alert_cleared": "incident", "device_online": "outage", "monitoring_resumed": "blind"}
FOLLOWED = frozenset({*OPENS, *CLOSES, "alert_acknowledged", "alert_flapping", "alert_flapping_ended"})


def _since(payload: dict[str, object], ts: float) -> float:
    """A blind stretch's start: the event's `since` (ISO-8601), or its own time."""
    try:
        return min(ts, datetime.fromisoformat(str(payload["since"]).replace("Z", "+00:00")).timestamp())
    except (KeyError, ValueError):
        return ts


class History:
    """The open episodes by device, and the ones a batch touched (written by flush)."""

    def __init__(self, conn: Connection | None = None) -> None:
        self.open: dict[str, dict[tuple[str, str], Episode]] = {}  # device_id -> (kind, subsystem) -> episode
        self.touched: dict[int, Episode] = {}
        if conn is not None:
            self.reload(conn)

    def reload(self, conn: Connection) -> None:
        """Read the open episodes back (at start and after a rollback)."""
        self.open.clear()
        self.touched.clear()
        for episode in episodes.load_open(conn):
            self.open.setdefault(episode.device_id, {})[episode.kind, episode.subsystem] = episode

    def discard(self) -> None:
        """Forget the changes not written (their message failed; the mirror is reloaded after the commit)."""
        self.touched.clear()

    def _get(self, kind: str, device_id: str, subsystem: str) -> Episode | None:
        return self.open.get(device_id, {}).get((kind, subsystem))

    def _touch(self, episode: Episode, event_id: int) -> None:
        episode.last_event = event_id
        self.touched[id(episode)] = episode

    def _begin(self, kind: str, device_id: str, subsystem: str, worst: str, ts: float, event_id: int) -> Episode:
        episode = Episode(kind, device_id, subsystem, ts, worst, first_event=event_id)
        self.open.setdefault(device_id, {})[kind, subsystem] = episode
        self._touch(episode, event_id)
        return episode

    def _end(self, episode: Episode, ts: float, event_id: int) -> None:
        episode.ended = max(ts, episode.started)
        self._touch(episode, event_id)
        held = self.open.get(episode.device_id, {})
        held.pop((episode.kind, episode.subsystem), None)
        if not held:
            self.open.pop(episode.device_id, None)

    def follow(self, stored: Iterable[tuple[int, float, NewEvent]]) -> None:
        """Each stored event (id, time, event), in order: what it does to the episodes."""
        for event_id, ts, event in stored:
            if event.type in FOLLOWED:
                self._one(event_id, ts, event)

    def _one(self, event_id: int, ts: float, event: NewEvent) -> None:
        payload, device = event.payload, event.source_id
        subsystem = str(payload.get("subsystem") or "") if event.type.startswith("alert") else ""
        if event.type in OPENS:
            self._opened(OPENS[event.type], device, subsystem, payload, ts, event_id)
        elif event.type in CLOSES:
            if (episode := self._get(CLOSES[event.type], device, subsystem)) is not None:
                self._end(episode, ts, event_id)
        elif (episode := self._get("incident", device, subsystem)) is not None:
            self._changed(episode, event.type, payload, ts, event_id)
        elif event.type == "alert_flapping" and payload.get("state") in ALERT_SEVERITY:
            self._begin("incident", device, subsystem, str(payload["state"]), ts, event_id)  # flapping began raised

    def _opened(self, kind: str, device: str, subsystem: str, payload: dict[str, object], ts: float, eid: int) -> None:
        """An alert, offline or blind event: a new episode, or a change of the open one (its state, for an alert)."""
        state = str(payload.get("state") or {"outage": "offline", "blind": "blind"}.get(kind, ""))
        episode = self._get(kind, device, subsystem)
        if episode is None:
            self._begin(kind, device, subsystem, state, _since(payload, ts) if kind == "blind" else ts, eid)
        elif kind == "incident":
            episode.worst = worse(episode.worst, state)
            episode.changes += 1
            self._touch(episode, eid)

    def _changed(self, episode: Episode, kind: str, payload: dict[str, object], ts: float, event_id: int) -> None:
        """An acknowledgement (the first is kept), or a flapping stretch's start and end, of an open incident."""
        state = str(payload.get("state") or "")
        if kind == "alert_acknowledged" and episode.ack_at is None:
            episode.ack_at, episode.ack_by = ts, str(payload.get("by") or "")
        elif kind == "alert_flapping":
            episode.changes += 1  # the change that made it flap, not announced itself
            episode.worst = worse(episode.worst, state)
        elif kind == "alert_flapping_ended":
            episode.changes += int(payload.get("changes", 0) or 0)  # the changes while it flapped, not announced
            episode.worst = worse(episode.worst, str(payload.get("worst") or ""))
            if state == "CLEARED":
                self._end(episode, ts, event_id)
                return
            episode.worst = worse(episode.worst, state)
        self._touch(episode, event_id)

    def forget(self, device_id: str, now: float) -> None:
        """An operator deleted the device (its events stay, so do its episodes): the open ones end now."""
        for episode in list(self.open.get(device_id, {}).values()):
            self._end(episode, now, episode.last_event or 0)

    def flush(self, conn: Connection) -> None:
        """Write what the batch changed, in the caller's transaction."""
        if self.touched:
            changed = list(self.touched.values())
            episodes.write(conn, changed)
            for episode in changed:
                episode.stored = True
            self.touched.clear()
