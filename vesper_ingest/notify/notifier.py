"""The ingest's notifier: the sink that decides messages and one delivery worker per channel.

Its clock is the ingest's frame (vesper_ingest/clock.py), so a step of the wall clock moves no group's
window and no reminder until the sweep rebases the frame; then `shift` moves the held times with the
stored ones (shifted in the sweep's transaction). The workers' retries and give-up run on the monotonic clock.
"""

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
        self.workers = {
            c.name: ChannelWorker(
                cfg.database.target, c, notify.give_up_after_s, clock=clock, send_timeout_s=notify.send_timeout_s
            )
            for c in notify.channels
        }
        self.sink = NotifySink(writer, notify, clock, self._queued)

    def _queued(self, channel: str) -> None:
        worker = self.workers.get(channel)
        if worker is not None:
            worker.poke()

    def shift(self, step: float) -> None:
        """The frame was rebased by `step`: open groups and reminders keep their time to go (stored ones moved too)."""
        grouper = self.sink.grouper
        for group in grouper.groups.values():
            group.opened_at += step
            group.due_at += step
        for told in grouper.told.values():
            for t in told.values():
                t.told_at += step
                t.escalate_at = None if t.escalate_at is None else t.escalate_at + step

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
