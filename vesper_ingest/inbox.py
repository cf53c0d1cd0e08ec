"""The worker's inbox: paho's thread puts messages in; the worker takes them in batches that grow with load."""

from __future__ import annotations

import queue

from vesper_ingest.batch import Inbound

Inbox = queue.SimpleQueue[Inbound | None]  # None only wakes the worker (a connect, a stop)


def take(inbox: Inbox, limit: int, timeout: float) -> list[Inbound]:
    """Block up to `timeout` for the first message, then take whatever else is waiting, at most `limit`."""
    batch: list[Inbound] = []
    try:
        item = inbox.get(timeout=timeout)
    except queue.Empty:
        return batch
    while True:
        if item is not None:
            batch.append(item)
        if len(batch) >= limit:
            return batch
        try:
            item = inbox.get_nowait()
        except queue.Empty:
            return batch
