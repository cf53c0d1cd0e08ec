"""GET /events/stream: catch-up from SQLite after Last-Event-ID, then live events from the hub."""

from __future__ import annotations

import queue
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import closing, suppress
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, current_app, request
from flask.typing import ResponseReturnValue

from shared import store
from shared.events import dumps
from vesper_web import sse
from vesper_web.api import INTEGER, valid_device_id
from vesper_web.hub import Hub, Subscriber

bp = Blueprint("stream", __name__)

CATCH_UP_CHUNK = 500
MAX_BATCH = 200  # frames written with one send when a client's queue has several waiting


def _last_event_id() -> int | None:
    """Last-Event-ID from the header (what a reconnecting EventSource sends) or ?last_event_id=."""
    raw = request.headers.get("Last-Event-ID") or request.args.get("last_event_id")
    if raw is None or raw.strip() == "":
        return None
    if not INTEGER.fullmatch(raw.strip()):
        abort(400, "Last-Event-ID must be an event id")
    return int(raw)


def _shutdown(environ: dict[str, Any], how: int) -> Callable[[], None] | None:
    """A function that shuts the client's socket (gunicorn only; None under a test client)."""
    sock = environ.get("gunicorn.socket")
    if sock is None:
        return None

    def shut() -> None:
        with suppress(OSError):
            sock.shutdown(how)

    return shut


@bp.get("/events/stream")
def stream() -> ResponseReturnValue:
    """Server-Sent Events of SPEC §5."""
    device = request.args.get("device")
    if device is not None:
        valid_device_id(device)
    after = _last_event_id()
    hub: Hub = current_app.extensions["vesper_hub"]
    cfg = current_app.config["VESPER"]
    # Registered before the catch-up query: what arrives meanwhile waits in the queue.
    # A dropped client may be blocked writing: shutting both directions frees its greenlet now.
    sub = hub.subscribe(device, on_drop=_shutdown(request.environ, socket.SHUT_RDWR))
    if sub is None:
        abort(503, "too many open streams on this worker; retry later")
    # A stream the server ends also ends its connection, not a keep-alive wait for another request.
    end = _shutdown(request.environ, socket.SHUT_RD)
    body = _frames(hub, sub, after, cfg.database.path, cfg.web.keepalive_s, end)
    response = Response(body, mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    response.call_on_close(lambda: hub.unsubscribe(sub))  # also when the body is never iterated
    return response


def _catch_up(db_path: str | Path, after: int, device: str | None) -> Iterator[tuple[int, bytes]]:
    """Stored events after `after`, read in chunks, each read its own short transaction."""
    with closing(store.connect(db_path, readonly=True)) as conn:
        after = min(after, store.last_event_id(conn))  # an id from another database: start from its end
        while True:
            rows = store.events_after(conn, after, limit=CATCH_UP_CHUNK, device=device)
            for event in rows:
                yield event["id"], sse.event(event["id"], dumps(event))
            if len(rows) < CATCH_UP_CHUNK:
                return
            after = rows[-1]["id"]


def _frames(
    hub: Hub,
    sub: Subscriber,
    after: int | None,
    db_path: str | Path,
    keepalive_s: float,
    end: Callable[[], None] | None = None,
) -> Iterator[bytes]:
    """The stream body: connected, catch-up, then live frames with no id sent twice."""
    try:
        yield sse.connected()
        sent = 0
        if after is not None:
            sent = after
            for event_id, frame in _catch_up(db_path, after, sub.device):
                sent = event_id
                yield frame
        next_keepalive = time.monotonic() + keepalive_s
        while True:
            try:
                item = sub.queue.get(timeout=max(0.0, next_keepalive - time.monotonic()))
            except queue.Empty:
                item = None
            batch: list[bytes] = []
            while item is not None:
                if item[0] > sent:  # live events the catch-up already sent are skipped by id
                    sent = item[0]
                    batch.append(item[2])
                if len(batch) >= MAX_BATCH or sub.queue.empty():
                    break
                item = sub.queue.get_nowait()  # only this generator takes from its queue
            if sub.closed:
                if end is not None:
                    end()
                return  # dropped (fell behind) or the worker is stopping: the client resumes by id
            if time.monotonic() >= next_keepalive:
                batch.append(sse.keepalive())
                next_keepalive = time.monotonic() + keepalive_s
            if batch:
                yield b"".join(batch)
    finally:
        hub.unsubscribe(sub)
