"""Real notification receivers on loopback: an HTTP webhook (Apprise json://) and an SMTP server (mailto://)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from email import message_from_bytes
from email.policy import default as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from vesper_sim.broker import free_port


class Webhook:
    """Records each JSON POST; answers `status` (503 while failing) so retries can be watched.

    `delay_s` makes it a slow service: each request is held that long (or until `release` is set)
    before it is answered; `holding` counts the requests held now. `arrived` is each request's
    X-Vesper-Message-Id (None without one) in order of arrival; `statuses` are the answers to the
    next requests, first one first, before `status` applies again.
    """

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.attempts = 0
        self.status = 200
        self.statuses: list[int] = []
        self.delay_s = 0.0
        self.release = threading.Event()
        self.arrived: list[str | None] = []
        self.holding = 0
        self._cond = threading.Condition()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the http.server API)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with hook._cond:
                    hook.arrived.append(self.headers.get("X-Vesper-Message-Id"))
                    hook.holding += 1
                    hook._cond.notify_all()
                if hook.delay_s:  # a slow service (a real wait, inside the receiver only)
                    hook.release.wait(hook.delay_s)
                with hook._cond:
                    hook.holding -= 1
                    hook.attempts += 1
                    status = hook.statuses.pop(0) if hook.statuses else hook.status
                    if status < 300:
                        hook.messages.append(json.loads(body))
                    hook._cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, predicate: Callable[[Webhook], bool], timeout: float, what: str) -> None:
        """Block until predicate(self) holds (woken by each request), or fail naming what was awaited."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what}: {len(self.messages)} received")
                self._cond.wait(left)

    def titles(self) -> list[str]:
        """The titles received, in order."""
        return [m["title"] for m in self.messages]

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    """A real SMTP server (aiosmtpd) keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self._cond = threading.Condition()
        box = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                with box._cond:
                    box.messages.append(message_from_bytes(envelope.content, policy=email_policy))
                    box._cond.notify_all()
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()
        self.url = f"mailto://127.0.0.1:{self.port}?from=vesper@example.com&to=ops@example.com&mode=insecure"

    def wait(self, count: int, timeout: float) -> None:
        """Block until `count` messages arrived."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {count} emails: {len(self.messages)} received")
                self._cond.wait(left)

    def close(self) -> None:
        """Stop the server."""
        self.controller.stop()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    """A JSON webhook receiver on a free loopback port."""
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    """An SMTP server on a free loopback port."""
    box = Mailbox()
    yield box
    box.close()
