"""Entry point: `python -m vesper_ingest`."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from contextlib import ExitStack

from shared import store
from shared.config import ConfigError, load
from shared.store.schema import StoreCorrupt
from vesper_ingest.lead import wait_for_lead
from vesper_ingest.lock import AlreadyRunning, acquire
from vesper_ingest.service import Ingest

log = logging.getLogger("vesper_ingest")
LOST_LEAD = 4  # the exit status of a leader that lost its database: restart it, and it waits as a standby


def unusable_database(path: str) -> str | None:
    """Why the SQLite file cannot be the store (corrupt, not a database, unreadable), or None: said once, at start."""
    try:
        store.open_store(path).close()
    except StoreCorrupt as exc:
        return str(exc)
    return None


def main() -> int:
    """Load config, lead (the PostgreSQL lock, or SQLite's lock file), run until SIGTERM or SIGINT."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    try:
        cfg = load()
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    with ExitStack() as held:
        conn = None
        if cfg.database.url:
            conn = wait_for_lead(cfg.database, stopping)
            if conn is None:
                return 0
        else:
            try:
                held.enter_context(acquire(cfg.database.path))
            except AlreadyRunning as exc:
                log.error("%s", exc)
                return 3
            refusal = unusable_database(cfg.database.path)
            if refusal:
                print(f"vesper_ingest: {refusal}", file=sys.stderr, flush=True)
                return 2
        ingest = Ingest(cfg, conn=conn)
        signal.signal(signal.SIGTERM, lambda *_: ingest.stop())
        signal.signal(signal.SIGINT, lambda *_: ingest.stop())
        if stopping.is_set():
            ingest.stop()
        try:
            ingest.run()
        except store.LeadLost as exc:
            log.error("lost the database session that holds the leader lock (%s); exiting so that a standby leads", exc)
            return LOST_LEAD
    return 0


if __name__ == "__main__":
    sys.exit(main())
