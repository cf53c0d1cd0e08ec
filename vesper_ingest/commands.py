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
from shared.events import NewEvent
from vesper_ingest.fleet import Fleet

log = logging.getLogger(__name__)


@dataclass
class Done:
    """What carrying out the pending commands did: devices forgotten, events to store."""

    forgotten: list[str] = field(default_factory=list)
    events: list[NewEvent] = field(default_factory=list)


def carry_out(conn: store.Connection, fleet: Fleet, counts: Counter[str], now: float) -> Done:
    """Run every pending command inside the caller's transaction, counting what each did."""
    done = Done()
    for command_id, kind, device_id, args in store.pending_commands(conn):
        if kind == "forget":
            store.forget_device_state(conn, device_id)
            fleet.forget(device_id)
            done.forgotten.append(device_id)
            counts["devices.forgotten"] += 1
            log.info("forgot device %s, as an operator asked", device_id)
        elif kind == "ack":
            _acknowledge(conn, device_id, args, now, done, counts)
        else:
            log.warning("ignored unknown command %r for %s", kind, device_id)
        store.command_done(conn, command_id)
    return done


def _acknowledge(
    conn: store.Connection, device_id: str, args: dict[str, Any], now: float, done: Done, counts: Counter[str]
) -> None:
    """Acknowledge the alert if it is still active (it may have cleared since the operator asked)."""
    subsystem, by, note = args.get("subsystem", ""), args.get("by", ""), args.get("note")
    if store.acknowledge(conn, device_id, subsystem, by, note, now):
        payload = {"subsystem": subsystem, "by": by, "note": note}
        done.events.append(NewEvent("alert_acknowledged", device_id, payload))
        counts["alerts.acknowledged"] += 1
