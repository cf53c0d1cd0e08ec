"""The ingest process: paho callbacks hand messages to one worker that commits, acks, publishes."""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from shared import store
from shared.config import Config
from shared.mqtt import describe, make_client
from shared.topics import Topics
from vesper_ingest import commands, sweep
from vesper_ingest.batch import Applied, Batch, Inbound, store_events
from vesper_ingest.clock import Every, Frame, moved
from vesper_ingest.fleet import Fleet
from vesper_ingest.inbox import Inbox, take
from vesper_ingest.notify import notifier_for
from vesper_ingest.outbox import Outbox
from vesper_ingest.selfreport import SelfReport
from vesper_ingest.sinks import Sink
from vesper_ingest.sinks.mqtt import MqttSink
from vesper_ingest.stats import Stats
from vesper_ingest.watchdog import Watchdog

log = logging.getLogger(__name__)

PRUNE_INTERVAL_S = 3600.0
DRAIN_TIMEOUT_S = 3.0


class Ingest:
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
        self.fleet = Fleet(self.conn, cfg.alerts)
        self.stats = Stats()
        self.inbox: Inbox = queue.SimpleQueue()
        self.stopping = threading.Event()
        self.generation = 0
        self.connected_since: float | None = None
        self.client = make_client(cfg.mqtt, cfg.mqtt.client_id, persistent=True, manual_ack=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_connect_fail = self._on_connect_fail(self.client.on_connect_fail)
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        self.published = MqttSink(self.client, self.topics.published, self.stats.count)
        self.notifier = notifier_for(cfg, self.writer, self.frame)
        self.sinks: list[Sink] = [self.published]  # every consumer of committed events: one line per sink
        if self.notifier is not None:
            self.sinks.append(self.notifier.sink)
        self.outbox = Outbox(self.conn, self.sinks)
        self.batch = Batch(self.writer, self.topics, self.fleet)
        self.report = SelfReport(cfg.mqtt.client_id, cfg.liveness.interrupted_after_s, self.clock(), self.mono())
        self.report.load(self.conn)
        self.swept: float | None = None  # the monotonic time of the last sweep that committed

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

    # --- paho callbacks: short, and nothing escapes them ----------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        try:
            if reason.is_failure:
                log.error("broker %s refused the connection: %s", describe(self.cfg.mqtt), reason)
                self.disconnected(f"the broker refused the connection: {reason}")
                return
            self.connected(bool(flags.session_present))
            self.stats.count("mqtt.connects")
            if flags.session_present:
                log.info("connected to %s (session resumed)", describe(self.cfg.mqtt))
            else:  # "connected" once the broker granted the subscriptions: a device heard from then on is taken
                client.subscribe(self.topics.subscriptions())
            self.inbox.put(None)
        except Exception:
            log.exception("on_connect failed")

    def _on_connect_fail(self, logged: Callable[..., None]) -> Callable[..., None]:
        """make_client's handler (it logs why), then: blind since the first failure, with that reason."""
        return lambda *args: (logged(*args), self.disconnected(f"cannot connect to the broker: {sys.exc_info()[1]}"))

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        try:
            for (topic, _qos), reason in zip(self.topics.subscriptions(), reasons, strict=False):
                if reason.is_failure:
                    log.error("broker %s refused the subscription to %s: %s", describe(self.cfg.mqtt), topic, reason)
            log.info("connected to %s (session new)", describe(self.cfg.mqtt))
        except Exception:
            log.exception("on_subscribe failed")

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        try:
            self.disconnected(f"lost the broker: {reason}")
            if not self.stopping.is_set():
                self.stats.count("mqtt.disconnects")
                log.warning("disconnected from %s: %s; retrying", describe(self.cfg.mqtt), reason)
        except Exception:
            log.exception("on_disconnect failed")

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            m = message
            self.inbox.put(Inbound(m.topic, m.payload, bool(m.retain), m.mid, m.qos, self.generation, bool(m.dup)))
        except Exception:
            log.exception("on_message failed")

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        try:
            self.published.on_puback(mid)
        except Exception:
            log.exception("on_publish failed")

    # --- the worker ------------------------------------------------------------------------

    def process(self, batch: list[Inbound]) -> None:
        """Commit the batch, then acknowledge it, then hand its events to the sinks."""
        now = self.clock()
        careful = False
        while True:
            try:
                with self.writer.transaction() as conn:
                    applied = self.batch.apply(batch, now, careful)
                    self.outbox.save_markers(conn)
                break
            except store.StoreUnavailable:
                log.exception("database write failed; retrying the batch of %d", len(batch))
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
        deltas = self.stats.take_unsaved()
        counts: Counter[str] = Counter()
        step = self.frame.step()  # the wall clock stepped: this sweep rebases the frame (vesper_ingest/clock.py)
        now += step
        try:
            with self.writer.transaction() as conn:
                if step:
                    sweep.rebase(conn, self.fleet, step)
                done = commands.carry_out(conn, self.fleet, counts, now)  # first: a forgotten device never goes offline
                decided = sweep.decide(conn, self.fleet, self.cfg, moved(self.connected_since, step), now)
                decided += self.report.record(conn, now, self.mono())
                fresh = store_events(conn, done.events + decided, now, counts)
                store.add_counters(conn, deltas)
                self.outbox.save_markers(conn)
        except store.StoreUnavailable:
            self.stats.restore_unsaved(deltas)
            self.fleet.reload(self.conn)
            log.exception("sweep failed; will retry")
            return
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

    def prune(self, now: float) -> None:
        """Drop events older than the retention."""
        if removed := sweep.prune(self.writer, self.cfg, now):
            log.info("pruned %d events older than %s days", removed, self.cfg.events.retention_days)

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
            while not self.stopping.is_set():
                batch = take(self.inbox, self.cfg.ingest.max_batch, sweeps.wait(1.0))
                if batch:
                    self.process(batch)
                else:
                    self.outbox.flush()
                if sweeps.due():
                    self.sweep(self.clock())
                if prunes.due():
                    self.prune(self.clock())
                if summaries.due():
                    log.info("summary: %s", self.stats.summary())
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
