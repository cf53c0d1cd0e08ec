"""The web's requests to the ingest (`ingest_commands`), carried out in the sweep's transaction.

The web never writes the ingest's tables (shared/store/registry.py); it queues a command and the
ingest, the single writer of devices, alerts and events, acts on it and updates its mirror. So an
acknowledgement's event takes its place in the one ordered sequence of events.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from shared import store
from shared.config import DevicesConfig
from shared.events import NewEvent, iso
from vesper_ingest.fleet import Fleet

log = logging.getLogger(__name__)

EXPIRE_PER_SWEEP = 200  # unregistered ids forgotten per sweep at most: Fleet.forget scans the alerts mirror per id


@dataclass
class Done:
    """What carrying out the pending commands did: devices forgotten, events to store."""

    forgotten: list[str] = field(default_factory=list)
    events: list[NewEvent] = field(default_factory=list)


def carry_out(
    conn: store.Connection, fleet: Fleet, counts: Counter[str], now: float, devices: DevicesConfig | None = None
) -> Done:
    """Run every pending command inside the caller's transaction, counting what each did; then expire ids."""
    done = Done()
    for command_id, kind, device_id, args in store.pending_commands(conn):
        if kind == "forget":
            store.forget_device_state(conn, device_id)
            fleet.forget(device_id, now)
            done.forgotten.append(device_id)
            counts["devices.forgotten"] += 1
            log.info("forgot device %s, as an operator asked", device_id)
        elif kind == "ack":
            _acknowledge(conn, device_id, args, now, done, counts)
        else:
            log.warning("ignored unknown command %r for %s", kind, device_id)
        store.command_done(conn, command_id)
    expire(conn, fleet, counts, now - (devices or DevicesConfig()).forget_unregistered_after_days * 86400, done, now)
    return done


def expire(conn: store.Connection, fleet: Fleet, counts: Counter[str], before: float, done: Done, now: float) -> None:
    """Forget, as a DELETE does, up to EXPIRE_PER_SWEEP devices never registered and unheard since `before` (§16).

    Churned ids (a device re-flashed with a new id, a test rig) would otherwise be kept forever and each
    declared offline. Bounded per sweep, so a backlog of 50,000 goes in 250 sweeps, each a few statements.
    """
    ids = store.unregistered_unheard(conn, before, EXPIRE_PER_SWEEP)
    if not ids:
        return
    store.forget_devices_state(conn, ids)
    for device_id in ids:
        fleet.forget(device_id, now)
    done.forgotten += ids
    counts["devices.forgotten_unregistered"] += len(ids)
    log.info("forgot %d devices never registered and unheard since %s (e.g. %s)", len(ids), iso(before), ids[0])


def _acknowledge(
    conn: store.Connection, device_id: str, args: dict[str, Any], now: float, done: Done, counts: Counter[str]
) -> None:
    """Acknowledge the alert if it is still active (it may have cleared since the operator asked)."""
    subsystem, by, note = args.get("subsystem", ""), args.get("by", ""), args.get("note")
    if store.acknowledge(conn, device_id, subsystem, by, note, now):
        payload = {"subsystem": subsystem, "by": by, "note": note}
        done.events.append(NewEvent("alert_acknowledged", device_id, payload))
        counts["alerts.acknowledged"] += 1
