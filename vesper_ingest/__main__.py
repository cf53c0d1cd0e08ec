"""Entry point: `python -m vesper_ingest`."""

from __future__ import annotations

import logging
import signal
import sys

from shared.config import ConfigError, load
from vesper_ingest.lock import AlreadyRunning, acquire
from vesper_ingest.service import Ingest


def main() -> int:
    """Load config, take the database lock, run until SIGTERM or SIGINT."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    try:
        cfg = load()
    except ConfigError as exc:
        logging.getLogger("vesper_ingest").error("%s", exc)
        return 2
    try:
        lock = acquire(cfg.database.path)
    except AlreadyRunning as exc:
        logging.getLogger("vesper_ingest").error("%s", exc)
        return 3
    ingest = Ingest(cfg)
    signal.signal(signal.SIGTERM, lambda *_: ingest.stop())
    signal.signal(signal.SIGINT, lambda *_: ingest.stop())
    try:
        ingest.run()
    finally:
        lock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
