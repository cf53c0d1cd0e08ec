"""The ingest process: paho callbacks hand messages to one worker that commits, acks, publishes."""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt

from shared import store
from shared.config import Config
from shared.events import NewEvent, dumps, iso, wire_json
from shared.mqtt import describe, make_client
from shared.topics import KINDS, Topics
from vesper_ingest import apply, classify, liveness, redelivery
from vesper_ingest.fleet import Fleet
from vesper_ingest.outbox import Outbox
from vesper_ingest.stats import Stats

log = logging.getLogger(__name__)

PRUNE_INTERVAL_S = 3600.0
DRAIN_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Inbound:
    """One received message, with what is needed to acknowledge it later."""

    topic: str
    payload: bytes
    retained: bool
    mid: int
    qos: int
    generation: int
    dup: bool = False


class Ingest:
    """Owns the MQTT client, the inbox and the database connection of one ingest process."""

    def __init__(self, cfg: Config, clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.clock = clock
        self.topics = Topics(cfg.mqtt.topic_prefix)
        self.conn = store.open_store(cfg.database.path)
        self.fleet = Fleet(self.conn)
        self.stats = Stats()
        self.inbox: queue.SimpleQueue[Inbound | None] = queue.SimpleQueue()
        self.stopping = threading.Event()
        self.generation = 0
        self.connected_since: float | None = None
        self.client = make_client(cfg.mqtt, cfg.mqtt.client_id, persistent=True, manual_ack=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        self.outbox = Outbox(self.client, self.topics.published, self.conn, self.stats.count)
        self._fresh: list[tuple[int, str]] = []  # events of the transaction in progress, encoded

    # --- paho callbacks: short, and nothing escapes them ----------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        try:
            if reason.is_failure:
                log.error("broker %s refused the connection: %s", describe(self.cfg.mqtt), reason)
                return
            self.generation += 1
            if not flags.session_present:
                client.subscribe(self.topics.subscriptions())
            self.connected_since = self.clock()
            self.outbox.reconnected()
            self.stats.count("mqtt.connects")
            log.info(
                "connected to %s (session %s)", describe(self.cfg.mqtt), "resumed" if flags.session_present else "new"
            )
            self.inbox.put(None)
        except Exception:
            log.exception("on_connect failed")

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        try:
            self.connected_since = None
            if not self.stopping.is_set():
                self.stats.count("mqtt.disconnects")
                log.warning("disconnected from %s: %s; retrying", describe(self.cfg.mqtt), reason)
        except Exception:
            log.exception("on_disconnect failed")

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            self.inbox.put(
                Inbound(
                    message.topic,
                    message.payload,
                    bool(message.retain),
                    message.mid,
                    message.qos,
                    self.generation,
                    bool(message.dup),
                )
            )
        except Exception:
            log.exception("on_message failed")

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        try:
            self.outbox.on_puback(mid)
        except Exception:
            log.exception("on_publish failed")

    # --- the worker ------------------------------------------------------------------------

    def _take_batch(self, timeout: float) -> list[Inbound]:
        """Block for the first message, then take whatever else is waiting: batches grow with load."""
        batch: list[Inbound] = []
        try:
            item = self.inbox.get(timeout=timeout)
        except queue.Empty:
            return batch
        limit = self.cfg.ingest.max_batch
        while True:
            if item is not None:
                batch.append(item)
            if len(batch) >= limit:
                return batch
            try:
                item = self.inbox.get_nowait()
            except queue.Empty:
                return batch

    def _store_events(self, conn: sqlite3.Connection, events: list[NewEvent], now: float, counts: Counter[str]) -> None:
        for ev in events:
            payload = dumps(ev.payload)
            event_id = store.insert_event(conn, now, ev.type, ev.severity, ev.source_id, payload)
            self._fresh.append((event_id, wire_json(event_id, now, ev.type, ev.severity, ev.source_id, payload)))
            counts[f"events.{ev.type}"] += 1

    def _apply_batch(
        self, conn: sqlite3.Connection, batch: list[Inbound], now: float, careful: bool
    ) -> tuple[Counter[str], list[classify.Rejected]]:
        """Apply every message of the batch; `careful` isolates each under a savepoint."""
        counts: Counter[str] = Counter()
        rejected: list[classify.Rejected] = []
        delivered: list[tuple[int, bytes, float]] = []
        for item in batch:
            kind = item.topic.rsplit("/", 1)[-1]
            counts[f"messages.{kind if kind in KINDS else 'other'}"] += 1
            if kind == "alerts" and item.qos == 1:
                digest = redelivery.digest(item.topic, item.payload)
                if item.dup and store.was_delivered(conn, item.mid, digest, now - redelivery.WINDOW_S):
                    counts["messages.redelivered"] += 1
                    continue
                delivered.append((item.mid, digest, now))
            if careful:
                conn.execute("SAVEPOINT message")
            try:
                result = classify.classify(self.topics, item.topic, item.payload, item.retained)
                if isinstance(result, classify.Rejected):
                    rejected.append(result)
                else:
                    self._store_events(conn, apply.apply(self.fleet, conn, result, now), now, counts)
            except sqlite3.OperationalError:
                raise
            except Exception:
                if not careful:
                    raise
                conn.execute("ROLLBACK TO message")
                rejected.append(classify.Rejected("internal_error", "", None))
                log.exception("applying a message on %r failed", item.topic[:200])
            if careful:
                conn.execute("RELEASE message")
        self.fleet.flush(conn)
        store.record_delivered(conn, delivered)
        self.outbox.save_marker(conn)
        return counts, rejected

    def process(self, batch: list[Inbound]) -> None:
        """Commit the batch, then acknowledge it, then publish its events."""
        now = self.clock()
        careful = False
        while True:
            self._fresh = []
            try:
                with store.write(self.conn) as conn:
                    counts, rejected = self._apply_batch(conn, batch, now, careful)
                break
            except sqlite3.OperationalError:
                log.exception("database write failed; retrying the batch of %d", len(batch))
                self.fleet.reload(self.conn)
                if self.stopping.wait(1.0):
                    return
            except Exception:
                # A bug met one message: roll back, then isolate each message so only it is lost.
                log.warning("a batch of %d failed; applying its messages one by one", len(batch))
                self.fleet.reload(self.conn)
                careful = True
        if careful:
            self.fleet.reload(self.conn)
        for name, n in counts.items():
            self.stats.count(name, n)
        for r in rejected:
            self.stats.rejected(r.reason, r.detail, r.device_id, now)
        for item in batch:
            if item.qos > 0 and item.generation == self.generation:
                # Acked only after the commit. A message from an earlier connection is not acked
                # here: the broker redelivers it and the repeat is applied idempotently.
                self.client.ack(item.mid, item.qos)
        self.outbox.flush(self._fresh)

    def sweep(self, now: float) -> None:
        """Declare overdue devices offline (compare-and-set), save counters and the marker."""
        cutoff = liveness.sweep_cutoff(now, self.cfg.liveness.heartbeat_timeout_s, self.connected_since)
        deltas = self.stats.take_unsaved()
        offline: Counter[str] = Counter()
        self._fresh = []
        try:
            with store.write(self.conn) as conn:
                if cutoff is not None:
                    for device_id, last_seen in store.overdue_devices(conn, cutoff):
                        if store.mark_offline(conn, device_id, cutoff):
                            gone = NewEvent("device_offline", device_id, {"last_seen": iso(last_seen)})
                            self._store_events(conn, [gone], now, offline)
                            self.fleet.went_offline(device_id)
                store.add_counters(conn, deltas)
                self.outbox.save_marker(conn)
        except sqlite3.OperationalError:
            self.stats.restore_unsaved(deltas)
            self.fleet.reload(self.conn)
            log.exception("sweep failed; will retry")
            return
        for name, n in offline.items():
            self.stats.count(name, n)
        self.outbox.flush(self._fresh)

    def prune(self, now: float) -> None:
        """Drop events older than the retention."""
        with store.write(self.conn) as conn:
            removed = store.prune_events(conn, now - self.cfg.events.retention_days * 86400)
        if removed:
            log.info("pruned %d events older than %s days", removed, self.cfg.events.retention_days)

    def run(self) -> None:
        """Connect, then work until stop() is called; drains what is in hand before returning."""
        log.info(
            "vesper_ingest starting: broker %s, client id %s, database %s",
            describe(self.cfg.mqtt),
            self.cfg.mqtt.client_id,
            self.cfg.database.path,
        )
        self.client.connect_async(self.cfg.mqtt.host, self.cfg.mqtt.port, keepalive=self.cfg.mqtt.keepalive_s)
        self.client.loop_start()
        now = self.clock()
        next_sweep, next_prune, next_summary = now, now, now + self.cfg.ingest.summary_interval_s
        try:
            while not self.stopping.is_set():
                batch = self._take_batch(timeout=max(0.0, min(next_sweep - self.clock(), 1.0)))
                if batch:
                    self.process(batch)
                else:
                    self.outbox.flush()
                now = self.clock()
                if now >= next_sweep:
                    self.sweep(now)
                    next_sweep = now + self.cfg.liveness.sweep_interval_s
                if now >= next_prune:
                    self.prune(now)
                    next_prune = now + PRUNE_INTERVAL_S
                if now >= next_summary:
                    log.info("summary: %s", self.stats.summary())
                    next_summary = now + self.cfg.ingest.summary_interval_s
            self._drain()
        finally:
            if self.client.is_connected():
                self.client.disconnect()
            self.client.loop_stop()
            self.conn.close()
            log.info("vesper_ingest stopped")

    def _drain(self) -> None:
        """On stop: finish the messages in hand, commit, ack, and wait briefly for publishes."""
        in_hand: list[Inbound] = []
        while True:
            try:
                item = self.inbox.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                in_hand.append(item)
        if in_hand:
            self.process(in_hand)
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while not self.outbox.idle() and time.monotonic() < deadline and self.client.is_connected():
            time.sleep(0.02)
        self.sweep(self.clock())
        log.info("drained %d messages on stop; summary: %s", len(in_hand), self.stats.summary())

    def stop(self) -> None:
        """Ask run() to finish (safe from a signal handler)."""
        self.stopping.set()
        self.inbox.put(None)
