"""Delivery: one worker thread per channel takes its queued messages in order and sends them with Apprise.

A failed send is retried with backoff (1 s doubling to 5 min) until give_up_after_s, then dropped;
the next message of that channel waits (order), other channels never do (each has its own thread).
Every outcome is written before the next message is taken, so a kill repeats at most the one in flight.
A send may take notify.send_timeout_s (Apprise's socket timeouts are set to it): a slow receiver is one
delivery, not a timeout and a retry. Each send names the stored message id, the same on every attempt,
so a receiver can drop a repeat: the X-Vesper-Message-Id header on the generic webhooks, else the body's last line.
The retry and give-up deadlines of the message in hand run on the monotonic clock (a step of the wall
clock neither drops a message early nor stalls its retries); the stored times are for operators and restarts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shared import store
from shared.notify_config import Channel, NotifyConfig
from shared.notify_text import with_message_id

log = logging.getLogger(__name__)

POLL_S = 1.0  # how often an idle channel looks for messages queued by another process (the web's tests)
BACKOFF_MAX_S = 300.0
Send = Callable[[int, str, str, str], str | None]  # (message id, title, body, notify type) -> None when sent, else why
HEADER = "X-Vesper-Message-Id"
HEADER_SCHEMES = frozenset({"json", "jsons", "form", "forms", "xml", "xmls"})  # Apprise's webhooks with `+Header=`


def backoff(failures: int) -> float:
    """Seconds before the next attempt after this many failed ones: 1, 2, 4, ... at most 300."""
    return min(BACKOFF_MAX_S, 2.0 ** max(0, failures - 1))


def call_limit(send_timeout_s: float) -> float:
    """The whole Apprise call's limit: a connect and then an answer may each take send_timeout_s.

    Only a backstop for a service that does not keep to its socket timeouts: reached while a request is
    out, Apprise abandons it unanswered, so the receiver may have it and the retry would repeat it.
    """
    return 2 * send_timeout_s + 5


def apprise_sender(url: str, send_timeout_s: float) -> Send:
    """A send function for one Apprise URL (checked at start-up, so it loads) whose sends may take send_timeout_s."""
    import apprise  # imported here: a process without channels never pays for it

    limit = call_limit(send_timeout_s)
    service = apprise.Apprise.instantiate(url, asset=apprise.AppriseAsset(service_timeout=limit))
    if service is None:
        raise ValueError("the channel's Apprise URL does not load")
    # What the URL args cto and rto set (4 s each by default): a receiver answering after 6 s failed every attempt.
    service.socket_connect_timeout = service.socket_read_timeout = send_timeout_s
    headers = service.headers if url.split("://", 1)[0].lower() in HEADER_SCHEMES else None
    target = apprise.Apprise()
    target.add(service)

    def send(message_id: int, title: str, body: str, notify_type: str) -> str | None:
        if headers is not None:
            headers[HEADER] = str(message_id)  # what a `+X-Vesper-Message-Id=` URL arg would set
        else:
            body = with_message_id(body, message_id)
        result = target.notify(
            body=body, title=title, notify_type=notify_type, body_format=apprise.NotifyFormat.TEXT, timeout=limit
        )
        if result:
            return None
        errors = [entry.asdict()["message"] for entry in result.logs()]
        return ("; ".join(errors) or "the service did not accept the message")[-500:]

    return send


@dataclass
class InHand:
    """The message a worker is on, with its give-up and next-attempt deadlines on the monotonic clock."""

    message_id: int
    give_up_at: float
    attempt_at: float


class ChannelWorker:
    """Sends one channel's messages, oldest first, on a thread of its own with a connection of its own."""

    def __init__(
        self,
        db_path: str | Path,
        channel: Channel,
        give_up_after_s: float,
        send: Send | None = None,
        clock: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
        *,
        send_timeout_s: float = NotifyConfig.send_timeout_s,
    ) -> None:
        """`clock`: the times stored (the ingest's frame); `mono`: the deadlines'; `send`: Apprise's by default."""
        self.db_path = db_path
        self.channel = channel
        self.give_up_after_s = give_up_after_s
        self.send = send or apprise_sender(channel.url, send_timeout_s)
        self.clock = clock
        self.mono = mono
        self.in_hand: InHand | None = None
        self.stopping = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"notify-{channel.name}", daemon=True)

    def start(self) -> None:
        """Begin sending."""
        self._thread.start()

    def poke(self) -> None:
        """A message was queued: look now rather than at the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Finish the send in flight (bounded by its timeout) and stop."""
        self.stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        conn = store.connect(self.db_path)
        try:
            while not self.stopping.is_set():
                try:
                    wait = self.step(conn)
                except store.StoreUnavailable:
                    log.exception("notification queue of %s unavailable; retrying", self.channel.name)
                    wait = POLL_S
                if wait > 0:
                    self._wake.wait(wait)
                    self._wake.clear()
        finally:
            conn.close()

    def step(self, conn: store.Connection) -> float:
        """Handle the channel's oldest undelivered message; returns how long to wait before the next step."""
        with store.guarded():
            row = store.next_message(conn, self.channel.name)
        if row is None:
            return POLL_S
        message_id, created_at, next_attempt_at, attempts, title, body, notify_type = row
        held = self._held(message_id, created_at, next_attempt_at)
        if self.mono() >= held.give_up_at:
            self._finish(conn, message_id, "dropped", self.clock(), f"not delivered within {self.give_up_after_s:g} s")
            log.error("notification %d to %s dropped after %d attempts", message_id, self.channel.name, attempts)
            return 0.0
        if held.attempt_at > self.mono():
            return min(POLL_S, held.attempt_at - self.mono())
        error = self._send(message_id, title, body, notify_type)
        now = self.clock()
        if error is None:
            self._finish(conn, message_id, "sent", now, None)
            return 0.0
        wait = backoff(attempts + 1)
        held.attempt_at = self.mono() + wait
        self._finish(conn, message_id, "failed", now, error, now + wait)
        log.warning("notification %d to %s failed (attempt %d): %s", message_id, self.channel.name, attempts + 1, error)
        return 0.0

    def _held(self, message_id: int, created_at: float, next_attempt_at: float) -> InHand:
        """The message's deadlines, read from its stored times once, when the worker takes it up."""
        if self.in_hand is None or self.in_hand.message_id != message_id:
            lead = self.mono() - self.clock()  # from the stored clock's scale to the monotonic one
            self.in_hand = InHand(message_id, created_at + self.give_up_after_s + lead, next_attempt_at + lead)
        return self.in_hand

    def _send(self, message_id: int, title: str, body: str, notify_type: str) -> str | None:
        try:
            return self.send(message_id, title, body, notify_type)
        except Exception as exc:  # a plugin's bug must not end the channel's thread
            log.exception("sending to %s raised", self.channel.name)
            return f"{type(exc).__name__}: {exc}"[:500]

    def _finish(
        self, conn: store.Connection, message_id: int, status: str, now: float, error: str | None, retry_at: float = 0
    ) -> None:
        with store.guarded(), store.write(conn):
            if status == "dropped":
                store.drop_message(conn, message_id, error or "")
            else:
                store.record_attempt(conn, message_id, status, now, retry_at or now, error)
            store.add_counters(conn, {f"notify.{status}.{self.channel.name}": 1})
