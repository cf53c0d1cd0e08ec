"""Standby ingests on PostgreSQL (§10): every ingest first waits for the leader lock, before MQTT or the schema."""

from __future__ import annotations

import logging
import os
import socket
import threading

from shared import store
from shared.config import DatabaseConfig
from shared.store import leader

log = logging.getLogger(__name__)

STEP_S = 0.5  # how often a waiting standby looks up from the lock to see whether it was asked to stop
RETRY_S = 1.0  # after the database could not be reached


def wait_for_lead(db: DatabaseConfig, stopping: threading.Event) -> store.Connection | None:
    """The connection that holds the leader lock, once this process leads; None if asked to stop first."""
    name = f"vesper_ingest {socket.gethostname()} pid {os.getpid()}"
    announced = False
    while not stopping.is_set():
        conn = None
        try:
            with store.guarded():
                conn = store.connect(db.url)
                leader.name_session(conn, name)
                while not stopping.is_set():
                    if leader.try_take(conn, STEP_S):
                        leader.fence(conn, db.leader_timeout_s)
                        leader.Lease(conn, name, db.leader_timeout_s)  # a failover takes the lock again (§16)
                        log.info("leading: %s holds the leader lock", name)
                        return conn
                    if not announced:
                        log.info("standby: %s leads; waiting for the lock, off MQTT", leader.holder(conn) or "another")
                        announced = True
        except store.StoreUnavailable as exc:
            log.warning("standby: database unavailable (%s); retrying", exc)
            stopping.wait(RETRY_S)
        if conn is not None:
            conn.close()
    return None
