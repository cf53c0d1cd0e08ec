"""What the ingest's sweep decides with time alone: overdue devices go offline, settled flapping ends, old rows go."""

from __future__ import annotations

from shared import store
from shared.config import Config
from shared.events import NewEvent, iso
from shared.store import audit, episodes
from shared.store.writes import shift_times
from vesper_ingest import flooding, liveness
from vesper_ingest.fleet import Fleet


def overdue(conn: store.Connection, fleet: Fleet, cfg: Config, since: float | None, now: float) -> list[NewEvent]:
    """Each device overdue now (by its own timeout, else the default) goes offline once, in one statement.

    The statement applies liveness.sweep_cutoff's rule, per device, to every row at once (a 50,000-device outage is one
    UPDATE, not 50,000: SPEC §16), and only the rows it changed are announced.
    """
    default = cfg.liveness.heartbeat_timeout_s
    cutoff = liveness.sweep_cutoff(now, min(default, store.shortest_timeout(conn) or default), since)
    if cutoff is None or since is None:
        return []
    gone = []
    for device_id, last_seen in store.mark_overdue_offline(conn, now, default, since, cutoff):
        gone.append(NewEvent("device_offline", device_id, {"last_seen": iso(last_seen)}))
        fleet.went_offline(device_id)
    return gone


def flapping_ended(fleet: Fleet, now: float) -> list[NewEvent]:
    """Each flapping subsystem stable for the window ends, with the state it holds now."""
    ended = []
    for (device_id, subsystem), flap in fleet.flaps.settle(now):
        current = fleet.alerts.get((device_id, subsystem))
        payload = {"subsystem": subsystem, "state": current[0] if current else "CLEARED", "changes": flap.quiet}
        if flap.worst:
            payload["worst"] = flap.worst  # the worst state it passed through unannounced (history, §13)
        ended.append(NewEvent("alert_flapping_ended", device_id, payload))
    return ended


def decide(conn: store.Connection, fleet: Fleet, cfg: Config, since: float | None, now: float) -> list[NewEvent]:
    """The sweep's events, inside its transaction: offline devices, floods over, then flapping that has settled.

    A flapping end is a device's event like its others: held back while that device floods (docs/events.md#flooding).
    """
    events = overdue(conn, fleet, cfg, since, now) + flooding.ended(fleet.floods, now, fleet.alerts_of)
    events += flooding.limited(fleet.floods, flapping_ended(fleet, now), now)
    fleet.flush(conn)
    return events


def rebase(conn: store.Connection, fleet: Fleet, step: float) -> None:
    """In the sweep's transaction: what deadlines run from moves by a wall-clock step (vesper_ingest/clock.py)."""
    shift_times(conn, step)
    fleet.shift(step)


def prune(writer: store.Writer, cfg: Config, now: float) -> int:
    """Drop what outlived its retention: events, notifications; episodes, silences (§13); audit entries (§14).

    Events and notifications go after events.retention_days, audit entries after auth.audit_retention_days.
    Silences are history's too: a past maintenance window is left out of availability. Returns how many events went.
    """
    before = now - cfg.events.retention_days * 86400
    kept = now - max(cfg.events.retention_days, cfg.history.retention_days) * 86400
    with writer.transaction() as conn:
        removed = store.prune_events(conn, before)
        store.prune_notifications(conn, before)
        store.prune_silences(conn, kept)
        if cfg.history.retention_days > 0:
            episodes.prune(conn, now - cfg.history.retention_days * 86400)
        audit.prune(conn, now - cfg.auth.audit_retention_days * 86400)
    return removed
