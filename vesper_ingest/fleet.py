"""In-memory mirror of liveness, active alerts and floods, with its writes (last seen, alerts, flaps) per commit.

Valid because exactly one ingest owns the database (see lock.py); reloaded after any rollback.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from shared import store
from shared.config import AlertsConfig
from vesper_ingest import firmware
from vesper_ingest.clock import moved
from vesper_ingest.flapping import Flaps
from vesper_ingest.flooding import META as FLOODS_META
from vesper_ingest.flooding import Floods
from vesper_ingest.history import History


class Fleet:
    """What the ingest knows of every device, so the hot path reads no rows."""

    def __init__(
        self, conn: store.Connection, alerts: AlertsConfig | None = None, firmware_key: str = "fw", history: bool = True
    ) -> None:
        """`history`: whether episodes are kept (history.retention_days > 0: SPEC §13)."""
        self.limits = alerts or AlertsConfig()
        self.keeps_history = history
        self.max_subsystems = self.limits.max_subsystems_per_device
        self.firmware_key = firmware_key  # devices.firmware_key (vesper_ingest/firmware.py)
        self.firmware_refused = 0  # heartbeats whose version was not one to store, since the batch took the count
        self.reload(conn)

    def reload(self, conn: store.Connection) -> None:
        """Read the truth back from the database (at start and after a rollback)."""
        self.devices: dict[str, tuple[str, float | None]] = {d: (lv, ls) for d, lv, ls in store.liveness_all(conn)}
        self.alerts: dict[tuple[str, str], tuple[str, str | None]] = {
            (d, s): (st, m) for d, s, st, m in store.all_alerts(conn)
        }
        self.alert_counts: Counter[str] = Counter(d for d, _ in self.alerts)
        self.flaps = Flaps(self.limits.flap_transitions, self.limits.flap_window_s, store.all_flaps(conn))
        # The floods as committed; other windows start afresh (a rolled-back batch is not counted twice).
        self.floods = Floods(self.limits.max_events_per_device_per_minute, saved=store.get_meta(conn, FLOODS_META))
        self.history = History(conn) if self.keeps_history else None  # the open episodes (vesper_ingest/history.py)
        self.discard()

    def discard(self) -> None:
        """Forget the writes not flushed yet (their message failed; the mirror is reloaded after the commit)."""
        self._seen: dict[str, tuple[float, str | None, str | None]] = {}  # last seen, heartbeat, firmware
        self._new: dict[str, tuple[float, str | None, str | None]] = {}  # first live signs, as _seen: rows made first
        # (device, subsystem) -> (state, message, at, changed) to upsert, or None to delete; one per key.
        self._alerts: dict[tuple[str, str], tuple[str, str | None, float, bool] | None] = {}
        if getattr(self, "history", None) is not None:
            self.history.discard()

    def set_alert(self, device_id: str, subsystem: str, state: str, message: str | None, now: float) -> None:
        """An active alert's new state, written at the flush; `changed` if its state changed within the batch."""
        key = (device_id, subsystem)
        before = self.alerts.get(key)
        if before is None:
            self.alert_counts[device_id] += 1
        self.alerts[key] = (state, message)
        pending = self._alerts.get(key, ())
        changed = pending is None or (before is not None and before[0] != state) or bool(pending and pending[3])
        self._alerts[key] = (state, message, now, changed)

    def clear_alert(self, device_id: str, subsystem: str) -> None:
        """An active alert's end, deleted at the flush."""
        if self.alerts.pop((device_id, subsystem), None) is not None:
            self.alert_counts[device_id] -= 1
            if not self.alert_counts[device_id]:
                del self.alert_counts[device_id]
        self._alerts[(device_id, subsystem)] = None

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
        self,
        conn: store.Connection,
        device_id: str,
        now: float,
        heartbeat: str | None = None,
        fields: dict[str, Any] | None = None,
    ) -> tuple[str | None, float | None]:
        """Record a live sign (a heartbeat's body, its version from `fields`: §12); returns (liveness, last_seen) then.

        `fields` is the body decoded (the classifier's). The version rides the statement that stores last_seen
        (flush): a heartbeat costs no statement more.
        """
        fw, refused = firmware.version(fields, self.firmware_key)
        self.firmware_refused += refused
        before = self.devices.get(device_id)
        self.devices[device_id] = ("online", now)
        pending = self._new.get(device_id) if before is None else self._seen.get(device_id)
        if pending is not None:  # the batch's earlier heartbeat's, unless this one says
            heartbeat, fw = heartbeat if heartbeat is not None else pending[1], fw if fw is not None else pending[2]
        (self._new if before is None else self._seen)[device_id] = (now, heartbeat, fw)
        return (None, None) if before is None else before

    def take_firmware_refused(self) -> int:
        """How many heartbeats' versions were refused since the last call (the batch counts them)."""
        refused, self.firmware_refused = self.firmware_refused, 0
        return refused

    def went_offline(self, device_id: str) -> None:
        """The sweep set a device offline."""
        _, last_seen = self.devices.get(device_id, ("offline", None))
        self.devices[device_id] = ("offline", last_seen)

    def shift(self, step: float) -> None:
        """The frame was rebased by `step` (the stored last_seen moved in the same transaction): so do these times."""
        self.devices = {d: (lv, moved(ls, step)) for d, (lv, ls) in self.devices.items()}
        self.flaps.shift(step)  # written by the sweep's flush
        self.floods.shift(step)

    def forget(self, device_id: str, now: float) -> None:
        """An operator deleted the device: its next message makes it a new device, as if never seen.

        Its events stay, so do its episodes: the open ones end `now` (written with the sweep's events).
        """
        if self.history is not None:
            self.history.forget(device_id, now)
        self.devices.pop(device_id, None)
        self._seen.pop(device_id, None)
        self._new.pop(device_id, None)
        for key in [key for key in self.alerts if key[0] == device_id]:
            del self.alerts[key]
        for key in [key for key in self._alerts if key[0] == device_id]:
            del self._alerts[key]
        self.alert_counts.pop(device_id, None)
        self.flaps.forget(device_id)
        self.floods.forget(device_id)

    def write_new(self, conn: store.Connection) -> None:
        """Make the rows of the batch's new devices now (a statement that updates one must find it)."""
        if self._new:
            store.mark_all_alive(conn, [(d, now, hb, fw) for d, (now, hb, fw) in self._new.items()])
            self._new.clear()

    def flush(self, conn: store.Connection) -> None:
        """Write the batch's new devices, last-seen times, alerts (one row per device, per alert), flaps, floods."""
        self.write_new(conn)
        if self._seen:
            store.record_seen(conn, [(now, hb, d, fw) for d, (now, hb, fw) in self._seen.items()])
            self._seen.clear()
        if self._alerts:
            upserts = [(*key, *w) for key, w in self._alerts.items() if w is not None]
            store.write_alerts(conn, upserts, [key for key, w in self._alerts.items() if w is None])
            self._alerts.clear()
        if self.flaps.dirty:
            store.write_flaps(conn, *self.flaps.take_dirty())
        if self.floods.dirty:
            store.set_meta(conn, FLOODS_META, self.floods.take_saved())

    def alerts_of(self, device_id: str) -> dict[str, str]:
        """A device's active alerts as {subsystem: state}."""
        return {s: state for (d, s), (state, _) in self.alerts.items() if d == device_id}
