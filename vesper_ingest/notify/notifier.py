"""The ingest's notifier: the sink that decides messages and one delivery worker per channel."""

from __future__ import annotations

from collections.abc import Callable

from shared import store
from shared.config import Config
from vesper_ingest.notify.delivery import ChannelWorker
from vesper_ingest.sinks.notify import NotifySink


class Notifier:
    """Owns the notification sink and the channels' workers."""

    def __init__(self, cfg: Config, writer: store.Writer, clock: Callable[[], float]) -> None:
        notify = cfg.notify
        self.workers = {c.name: ChannelWorker(cfg.database.target, c, notify.give_up_after_s) for c in notify.channels}
        self.sink = NotifySink(writer, notify, clock, self._queued)

    def _queued(self, channel: str) -> None:
        worker = self.workers.get(channel)
        if worker is not None:
            worker.poke()

    def start(self) -> None:
        """Start every channel's worker."""
        for worker in self.workers.values():
            worker.start()

    def stop(self) -> None:
        """Let each worker finish its send in flight, then stop."""
        for worker in self.workers.values():
            worker.stopping.set()
        for worker in self.workers.values():
            worker.stop()
