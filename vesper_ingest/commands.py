"""The web's requests to the ingest (`ingest_commands`), carried out in the sweep's transaction.

The web never writes the ingest's tables (shared/store/registry.py); it queues a command and the
ingest, the single writer of devices, alerts and events, acts on it and updates its mirror.
"""

from __future__ import annotations

import logging
from collections import Counter

from shared import store
from vesper_ingest.fleet import Fleet

log = logging.getLogger(__name__)


def carry_out(conn: store.Connection, fleet: Fleet, counts: Counter[str]) -> list[str]:
    """Run every pending command inside the caller's transaction, counting `devices.forgotten`; returns those."""
    forgotten = []
    for command_id, kind, device_id in store.pending_commands(conn):
        if kind == "forget":
            store.forget_device_state(conn, device_id)
            fleet.forget(device_id)
            forgotten.append(device_id)
            counts["devices.forgotten"] += 1
            log.info("forgot device %s, as an operator asked", device_id)
        else:
            log.warning("ignored unknown command %r for %s", kind, device_id)
        store.command_done(conn, command_id)
    return forgotten
