"""The ingest process: paho callbacks hand messages to one worker that commits, acks, publishes."""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable

from shared import store
from shared.config import Config
from shared.mqtt import describe, make_client
from shared.topics import Topics
from vesper_ingest import commands, history_start, silence_events, sweep
from vesper_ingest.batch import Applied, Batch, Inbound, store_events
from vesper_ingest.callbacks import Callbacks
from vesper_ingest.clock import Every, Frame, moved
from vesper_ingest.fleet import Fleet
from vesper_ingest.inbox import Inbox, take
from vesper_ingest.notify import notifier_for
from vesper_ingest.outage import PRUNE_FAILURES, STALLS, StoreOutage, stall_after_s
from vesper_ingest.outbox import Outbox
from vesper_ingest.selfreport import SelfReport
from vesper_ingest.sinks import Sink
from vesper_ingest.sinks.mqtt import MqttSink
from vesper_ingest.stats import Stats
from vesper_ingest.watchdog import Watchdog

log = logging.getLogger(__name__)

PRUNE_INTERVAL_S = 3600.0
PRUNE_RETRY_S = 60.0
DRAIN_TIMEOUT_S = 3.0


class Ingest(Callbacks):
    """Owns the MQTT client, the inbox and the database connection of one ingest process."""

    def __init__(
        self, cfg: Config, clock: Callable[[], float] = time.time, conn: store.Connection | None = None, *,
        mono: Callable[[], float] | None = None,
    ) -> None:
        """`clock`: the wall clock; `mono`: deadlines' (a test's fake: `clock`); `conn`: the leader lock's (§10)."""
        self.cfg = cfg
        self.mono = mono or (time.monotonic if clock is time.time else clock)
        self.frame = self.clock = Frame(clock, self.mono)  # every `now` stored or compared (vesper_ingest/clock.py)
        self.topics = Topics(cfg.mqtt.topic_prefix)
        self.writer = store.Writer(cfg.database.target, conn)
        self.conn = self.writer.conn
        self.fleet = Fleet(self.conn, cfg.alerts, cfg.devices.firmware_key, cfg.history.retention_days > 0)
        self.stats = Stats()
        self.inbox: Inbox = queue.SimpleQueue()
        self.stopping = threading.Event()
        self.generation = 0
        self.connected_since: float | None = None
        self.client = make_client(cfg.mqtt, cfg.mqtt.client_id, persistent=True, manual_ack=True)
        self.attach(self.client)
        self.published = MqttSink(self.client, self.topics.published, self.stats.count)
        self.notifier = notifier_for(cfg, self.writer, self.frame)
        self.sinks: list[Sink] = [self.published]  # every consumer of committed events: one line per sink
        if self.notifier is not None:
            self.sinks.append(self.notifier.sink)
        self.outbox = Outbox(self.conn, self.sinks)
        self.batch = Batch(self.writer, self.topics, self.fleet)
        self.report = SelfReport(cfg.mqtt.client_id, cfg.liveness.interrupted_after_s, self.clock(), self.mono())
        self.report.load(self.conn)
        if self.fleet.history is not None:  # §13: backfilled once; the stretch no ingest watched is blind
            with self.writer.transaction() as conn:
                history_start.begin(conn, self.fleet.history, self.clock(), cfg.mqtt.client_id, cfg.liveness)
        self.swept: float | None = None  # the monotonic time of the last sweep that committed
        self.outage = StoreOutage(self.stats, self.mono)
        self.stall_s = stall_after_s(cfg.liveness.sweep_interval_s, cfg.liveness.heartbeat_timeout_s)
        self.regraced_at = -math.inf  # monotonic: the last time a stall restarted every device's grace
        self.unseen: list[tuple[float, float]] = []  # stretches it could not watch, to record as blind (§13)

    # --- connection state (the paho callbacks call these; in-process tests too) -----------

    def connected(self, session_present: bool = False) -> None:
        """Connected to the broker: a new generation of acks, and every device's grace starts now."""
        self.generation += 1
        with self.frame.lock:  # never inside a rebase's move of the frame (_rebased)
            self.connected_since = self.clock()
        self.report.connected(self.connected_since)
        self.published.reconnected()

    def disconnected(self, reason: str = "lost the broker") -> None:
        """Lost the broker (or never reached it): no device can be declared offline until connected again."""
        with self.frame.lock:
            self.connected_since = None
        self.report.disconnected(self.clock(), self.mono(), reason)

    # --- the worker ------------------------------------------------------------------------

    def process(self, batch: list[Inbound]) -> None:
        """Commit the batch, then acknowledge it, then hand its events to the sinks."""
        careful, began = False, self.mono()
        while True:
            try:
                with self.writer.transaction() as conn:
                    applied = self.batch.apply(batch, self.clock(), careful)  # now: when it is stored at last
                    self.outbox.save_markers(conn)
                break
            except store.StoreUnavailable as exc:
                self.outage.failed(f"a batch of {len(batch)} messages", exc)
                self.fleet.reload(self.conn)
                if self.stopping.wait(1.0):
                    return
            except Exception:
                # A bug met one message: roll back, then isolate each message so only it is lost.
                self.fleet.reload(self.conn)
                if careful:  # it failed outside any one message: wait, as for the database, and retry
                    log.exception("a batch of %d failed even message by message; retrying", len(batch))
                    if self.stopping.wait(1.0):
                        return
                log.warning("a batch of %d failed; applying its messages one by one", len(batch))
                careful = True
        self._wrote(began)
        if careful:
            self.fleet.reload(self.conn)
        self._account(applied)
        for item in batch:
            if item.qos > 0 and item.generation == self.generation:
                # Acked only after the commit. A message from an earlier connection is not acked
                # here: the broker redelivers it and the repeat is applied idempotently.
                self.client.ack(item.mid, item.qos)
        self.outbox.flush(applied.events)

    def _account(self, applied: Applied) -> None:
        self.stats.count("ingest.batches")  # beside messages.*: how full the batches are
        for name, n in applied.counts.items():
            self.stats.count(name, n)
        for r in applied.rejected:
            self.stats.rejected(r.reason, r.detail, r.device_id, self.mono())  # the log's rate: a deadline

    def sweep(self, now: float) -> None:
        """Carry out the web's commands, declare overdue devices offline, save counters and the sinks' positions."""
        began = self.mono()
        if self.outage.failing_since is not None:  # the write that works again decides nothing on stale state
            self._regrace(now, "the database refused writes", self.mono() - self.outage.failing_since)
        deltas = self.stats.take_unsaved()
        counts: Counter[str] = Counter()
        step = self.frame.step()  # the wall clock stepped: this sweep rebases the frame (vesper_ingest/clock.py)
        now += step
        try:
            with self.writer.transaction() as conn:
                if step:
                    sweep.rebase(conn, self.fleet, step)
                # first: a forgotten device never goes offline
                done = commands.carry_out(conn, self.fleet, counts, now, self.cfg.devices)
                done.events += silence_events.tell(conn, now)  # operators' silences, told once each (§12)
                decided = sweep.decide(conn, self.fleet, self.cfg, moved(self.connected_since, step), now)
                decided += self.report.record(conn, now, self.mono())
                fresh = store_events(conn, done.events + decided, now, counts, self.fleet.history)
                store.add_counters(conn, deltas)
                self.outbox.save_markers(conn)
                if self.fleet.history is not None:
                    history_start.record_blind(conn, self.cfg.mqtt.client_id, self.unseen)
        except store.StoreUnavailable as exc:
            self.stats.restore_unsaved(deltas)
            self.fleet.reload(self.conn)
            self.outage.failed("the sweep", exc)
            return
        self._wrote(began)
        self.unseen.clear()
        if step:
            self._rebased(step)
        self.swept = self.mono()
        for name, n in counts.items():
            self.stats.count(name, n)
        if done.forgotten and self.notifier is not None:
            self.notifier.sink.grouper.forget(set(done.forgotten))  # the store dropped its rows in that transaction
        self.outbox.flush(fresh)

    def _rebased(self, step: float) -> None:
        """The stored times moved by `step` in the sweep's commit: the frame and the times held here follow."""
        with self.frame.lock:
            self.frame.rebase(step)
            self.connected_since = moved(self.connected_since, step)
        for name in ("connected_at", "lost_at", "interrupted_since"):  # shown times: on the corrected clock too
            setattr(self.report, name, moved(getattr(self.report, name), step))
        if self.notifier is not None:
            self.notifier.shift(step)
        log.warning("the wall clock stepped %+.1f s: deadlines kept their time to go; stored times follow", step)

    def _wrote(self, began: float) -> None:
        """A write committed: after failed attempts, or a wait past the stall bound, grace restarts (§16)."""
        waited = self.mono() - began
        if self.outage.worked() or waited > self.stall_s:
            self._regrace(self.clock(), f"the database took {waited:.1f} s to take a write", waited)

    def _regrace(self, now: float, why: str, lost_s: float) -> None:
        """The ingest could not watch (its store or itself stalled): each device's timeout runs from `now` again.

        A stretch longer than history's gap bound is recorded as blind (unknown time, §13) by the next sweep.
        """
        if lost_s > history_start.gap_s(self.cfg.liveness):
            self.unseen.append((now - lost_s, now))
        with self.frame.lock:
            if self.connected_since is not None:
                self.connected_since = max(self.connected_since, now)
        if self.regraced_at < self.mono() - self.stall_s:  # said once per stall, however many writes end it
            self.stats.count(STALLS)
            log.warning("%s: every device gets a full heartbeat timeout from now", why)
        self.regraced_at = self.mono()

    def prune(self, now: float) -> bool:
        """Drop events older than the retention; False when it failed (logged and counted, never fatal)."""
        try:
            removed = sweep.prune(self.writer, self.cfg, now)
        except Exception as exc:
            self.stats.count(PRUNE_FAILURES)
            log.warning("pruning old events failed: %s; trying again in %.0f s", exc, PRUNE_RETRY_S,
                        exc_info=not isinstance(exc, store.StoreUnavailable))  # fmt: skip
            return False
        if removed:
            log.info("pruned %d events older than %s days", removed, self.cfg.events.retention_days)
        return True

    def run(self) -> None:
        """Connect, then work until stop() is called; drains what is in hand before returning."""
        where = self.cfg.database.url.split("@")[-1] or self.cfg.database.path  # no password in the log
        log.info("vesper_ingest starting: broker %s, client id %s, database %s",
                 describe(self.cfg.mqtt), self.cfg.mqtt.client_id, where)
        self.client.connect_async(self.cfg.mqtt.host, self.cfg.mqtt.port, keepalive=self.cfg.mqtt.keepalive_s)
        self.client.loop_start()
        if self.notifier is not None:
            self.notifier.start()
        watchdog = Watchdog(self.cfg.notify.watchdog_url, self.cfg.notify.watchdog_interval_s, self.seeing)
        watchdog.start()
        # A leader's sweep is also what keeps its session from the server's idle timeout (lead.py).
        every = self.cfg.liveness.sweep_interval_s
        if self.writer.fenced:
            every = min(every, self.cfg.database.leader_timeout_s / 3)
        summary_s = self.cfg.ingest.summary_interval_s  # all three on the monotonic clock: a step stalls none
        sweeps, prunes = Every(every, self.mono), Every(PRUNE_INTERVAL_S, self.mono)
        summaries = Every(summary_s, self.mono, first_in_s=summary_s)
        try:
            self._work(sweeps, prunes, summaries)
            self._drain()
        finally:
            self.stopping.set()  # also on LeadLost: the disconnect that follows is ours, not the broker's
            if self.client.is_connected():
                self.client.disconnect()
            self.client.loop_stop()
            if self.notifier is not None:
                self.notifier.stop()
            watchdog.stop()
            self.writer.close()
            log.info("vesper_ingest stopped")

    def _work(self, sweeps: Every, prunes: Every, summaries: Every) -> None:
        """The worker's loop: batches as they come; the sweep, the prune and the summary when due."""
        looped = self.mono()
        while not self.stopping.is_set():
            batch = take(self.inbox, self.cfg.ingest.max_batch, sweeps.wait(1.0))
            if (gap := self.mono() - looped) > self.stall_s + 1.0:  # this process stalled (stopped, swapped)
                self._regrace(self.clock(), f"the ingest itself stalled for {gap:.1f} s", gap)
            looped = self.mono()
            if batch:
                self.process(batch)
            else:
                self.outbox.flush()
            if sweeps.due():
                self.sweep(self.clock())
            if prunes.due() and not self.prune(self.clock()):
                prunes.again_in(PRUNE_RETRY_S)
            if summaries.due():
                log.info("summary: %s", self.stats.summary())

    def _drain(self) -> None:
        """On stop: finish the messages in hand, commit, ack, and wait briefly for publishes."""
        drained = 0
        while in_hand := take(self.inbox, self.cfg.ingest.max_batch, 0):
            self.process(in_hand)
            drained += len(in_hand)
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while not self.outbox.idle() and time.monotonic() < deadline and self.client.is_connected():
            time.sleep(0.02)
        self.sweep(self.clock())
        log.info("drained %d messages on stop; summary: %s", drained, self.stats.summary())

    def seeing(self) -> bool:
        """Connected to the broker and sweeping (a committed sweep within three intervals): what the watchdog tells."""
        recent = self.swept is not None and self.mono() - self.swept < 3 * max(self.cfg.liveness.sweep_interval_s, 1.0)
        return self.connected_since is not None and recent

    def stop(self) -> None:
        """Ask run() to finish (safe from a signal handler)."""
        self.stopping.set()
        self.inbox.put(None)
