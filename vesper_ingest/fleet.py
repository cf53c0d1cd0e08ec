"""In-memory mirror of liveness and active alerts, with last-seen writes batched per commit.

Valid because exactly one ingest owns the database (see lock.py); reloaded after any rollback.
"""

from __future__ import annotations

from collections import Counter

from shared import store
from shared.config import AlertsConfig
from vesper_ingest.flapping import Flaps


class Fleet:
    """What the ingest knows of every device, so the hot path reads no rows."""

    def __init__(self, conn: store.Connection, alerts: AlertsConfig | None = None) -> None:
        self.limits = alerts or AlertsConfig()
        self.max_subsystems = self.limits.max_subsystems_per_device
        self.reload(conn)

    def reload(self, conn: store.Connection) -> None:
        """Read the truth back from the database (at start and after a rollback)."""
        self.devices: dict[str, tuple[str, float | None]] = {d: (lv, ls) for d, lv, ls in store.liveness_all(conn)}
        self.alerts: dict[tuple[str, str], tuple[str, str | None]] = {
            (d, s): (st, m) for d, s, st, m in store.all_alerts(conn)
        }
        self.alert_counts: Counter[str] = Counter(d for d, _ in self.alerts)
        self.flaps = Flaps(self.limits.flap_transitions, self.limits.flap_window_s, store.all_flaps(conn))
        self._seen: dict[str, tuple[float, str | None]] = {}

    def set_alert(self, device_id: str, subsystem: str, state: str, message: str | None) -> None:
        """Mirror an active alert's new state."""
        if (device_id, subsystem) not in self.alerts:
            self.alert_counts[device_id] += 1
        self.alerts[(device_id, subsystem)] = (state, message)

    def clear_alert(self, device_id: str, subsystem: str) -> None:
        """Mirror an active alert's end."""
        if self.alerts.pop((device_id, subsystem), None) is not None:
            self.alert_counts[device_id] -= 1
            if not self.alert_counts[device_id]:
                del self.alert_counts[device_id]

    def has_room(self, device_id: str, subsystem: str) -> bool:
        """False for a new subsystem on a device that already holds max_subsystems active alerts."""
        return (device_id, subsystem) in self.alerts or self.alert_counts[device_id] < self.max_subsystems

    def ensure(self, conn: store.Connection, device_id: str, now: float, heartbeat: str | None) -> None:
        """Make a device known without making it online (retained heartbeat)."""
        if device_id not in self.devices:
            store.ensure_device(conn, device_id, now)
            if heartbeat is not None:
                store.set_heartbeat_if_empty(conn, device_id, heartbeat)
            self.devices[device_id] = ("unknown", None)

    def alive(
        self, conn: store.Connection, device_id: str, now: float, heartbeat: str | None = None
    ) -> tuple[str | None, float | None]:
        """Record a live sign; returns (liveness, last_seen) as they were before."""
        before = self.devices.get(device_id)
        self.devices[device_id] = ("online", now)
        if before is None:
            store.mark_alive(conn, device_id, now)  # the row must exist for later statements
            if heartbeat is not None:
                store.set_heartbeat(conn, device_id, heartbeat)
            return None, None
        pending = self._seen.get(device_id)
        self._seen[device_id] = (now, heartbeat if heartbeat is not None else pending[1] if pending else None)
        return before

    def went_offline(self, device_id: str) -> None:
        """The sweep set a device offline."""
        _, last_seen = self.devices.get(device_id, ("offline", None))
        self.devices[device_id] = ("offline", last_seen)

    def forget(self, device_id: str) -> None:
        """An operator deleted the device: its next message makes it a new device, as if never seen."""
        self.devices.pop(device_id, None)
        self._seen.pop(device_id, None)
        for key in [key for key in self.alerts if key[0] == device_id]:
            del self.alerts[key]
        self.alert_counts.pop(device_id, None)
        self.flaps.forget(device_id)

    def flush(self, conn: store.Connection) -> None:
        """Write the batch's last-seen times (one row per device) and changed flap records inside its transaction."""
        if self._seen:
            store.record_seen(conn, [(now, hb, d) for d, (now, hb) in self._seen.items()])
            self._seen.clear()
        if self.flaps.dirty:
            store.write_flaps(conn, *self.flaps.take_dirty())
