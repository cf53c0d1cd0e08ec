"""Apply one classified message to the store, inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Callable

from shared import store
from shared.events import NewEvent, iso
from shared.severity import ALERT_SEVERITY
from vesper_ingest.classify import Alert, Heartbeat, Info, Message, Rejected
from vesper_ingest.fleet import Fleet
from vesper_ingest.liveness import announces_online


def _alive(
    fleet: Fleet, conn: store.Connection, device_id: str, now: float, beat: Heartbeat | None = None
) -> list[NewEvent]:
    """Record a live sign (a heartbeat's, with its body); an offline device coming back is announced."""
    body, fields = (beat.body, beat.fields) if beat is not None else (None, None)
    before, last_seen = fleet.alive(conn, device_id, now, body, fields)
    if announces_online(before):
        return [NewEvent("device_online", device_id, {"last_seen": iso(now), "previous_last_seen": iso(last_seen)})]
    return []


def heartbeat(fleet: Fleet, conn: store.Connection, msg: Heartbeat, now: float) -> list[NewEvent]:
    """Live heartbeats update last_seen silently; retained ones only make a device known."""
    if msg.retained:
        fleet.ensure(conn, msg.device_id, now, msg.body)
        return []
    return _alive(fleet, conn, msg.device_id, now, msg)


def alert(fleet: Fleet, conn: store.Connection, msg: Alert, now: float) -> list[NewEvent] | Rejected:
    """Upsert or delete the subsystem's row; a repeat emits nothing; a new subsystem past the bound is refused."""
    if msg.state != "CLEARED" and not fleet.has_room(msg.device_id, msg.subsystem):
        return Rejected("too_many_subsystems", f"{fleet.max_subsystems} active alerts already", msg.device_id)
    events = _alive(fleet, conn, msg.device_id, now)
    key = (msg.device_id, msg.subsystem)
    current = fleet.alerts.get(key)
    previous = current[0] if current else None
    if msg.state == "CLEARED":
        if current is None:
            return events
        fleet.clear_alert(msg.device_id, msg.subsystem)
        cleared = {"subsystem": msg.subsystem, "previous_state": previous}
        return events + _unless_flapping(fleet, key, True, now, NewEvent("alert_cleared", msg.device_id, cleared))
    if current == (msg.state, msg.message):
        return events
    fleet.set_alert(msg.device_id, msg.subsystem, msg.state, msg.message, now)
    payload = {"subsystem": msg.subsystem, "state": msg.state, "message": msg.message, "previous_state": previous}
    event = NewEvent("alert", msg.device_id, payload, ALERT_SEVERITY[msg.state])
    return events + _unless_flapping(fleet, key, previous != msg.state, now, event)


def _unless_flapping(fleet: Fleet, key: tuple[str, str], changed: bool, now: float, event: NewEvent) -> list[NewEvent]:
    """The change's event; one alert_flapping instead when this change starts flapping; nothing while it flaps."""
    state = event.payload.get("state") or "CLEARED"
    flap = fleet.flaps.change(key, now, state) if changed else "quiet" if fleet.flaps.is_flapping(key) else ""
    if flap == "started":
        payload = {"subsystem": key[1], "transitions": fleet.flaps.transitions, "state": state}  # history folds it
        return [NewEvent("alert_flapping", key[0], payload, "warning")]
    return [] if flap == "quiet" else [event]


def info(fleet: Fleet, conn: store.Connection, msg: Info, now: float) -> list[NewEvent]:
    """Playback info updates the device; any other type becomes an `info` event."""
    events = _alive(fleet, conn, msg.device_id, now)
    fleet.write_new(conn)  # set_playback updates the row
    melody = msg.payload.get("melody_uid")
    if msg.type == "playback_started":
        store.set_playback(conn, msg.device_id, True, melody)
        return events + [NewEvent("playback_started", msg.device_id, {"melody_uid": melody})]
    if msg.type == "playback_stopped":
        before = store.set_playback(conn, msg.device_id, False, None)
        return events + [NewEvent("playback_stopped", msg.device_id, {"melody_uid": melody or before})]
    return events + [NewEvent("info", msg.device_id, {"type": msg.type, "payload": msg.payload})]


Handler = Callable[[Fleet, store.Connection, Message, float], "list[NewEvent] | Rejected"]
HANDLERS: dict[str, Handler] = {  # one per topic kind in shared/vocabulary.py (tests/test_vocabulary.py checks)
    "heartbeat": heartbeat,  # type: ignore[dict-item]
    "alerts": alert,  # type: ignore[dict-item]
    "info": info,  # type: ignore[dict-item]
}


def apply(fleet: Fleet, conn: store.Connection, msg: Message, now: float) -> list[NewEvent] | Rejected:
    """Apply one message; returns the events it causes (not yet stored), or why it was refused."""
    return HANDLERS[msg.kind](fleet, conn, msg, now)
