"""GET /events/stream: catch-up from SQLite after Last-Event-ID, then live events from the hub."""

from __future__ import annotations

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
from vesper_web import auth, scope, sse
from vesper_web.api import INTEGER, valid_device_id
from vesper_web.hub import Hub, Subscriber
from vesper_web.ring import RESTART_ID, Item
from vesper_web.stream_scope import SiteFilter

bp = Blueprint("stream", __name__)

MAX_BATCH = 200  # frames written with one send when several are waiting for a client


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
    """Server-Sent Events (docs/events.md#stream, docs/architecture.md#stream-resume).
    ---
    get:
      description: "One `event:` per stored event, `id:` its id, `data:` its JSON; a reconnecting EventSource sends
        Last-Event-ID and gets what it missed first. The answer never ends: read it as a stream."
      parameters:
        - device
        - {name: last_event_id, in: query, description: "as the Last-Event-ID header", schema: {type: integer}}
        - {name: Last-Event-ID, in: header, description: "the events after this id first", schema: {type: integer}}
      responses:
        200: {description: the stream, content: {text/event-stream: {schema: {type: string}}}}
        400: BadRequest
        503: Unavailable
    """
    device = request.args.get("device")
    if device is not None:
        scope.require(valid_device_id(device))
    after = _last_event_id()
    hub: Hub = current_app.extensions["vesper_hub"]
    cfg = current_app.config["VESPER"]
    sites = auth.sites()
    only = None if sites is None else SiteFilter(cfg.database.target, sites)  # a token limited to sites (§14)
    # Registered before the catch-up query: what arrives meanwhile waits in the ring.
    # A dropped client may be blocked writing: shutting both directions frees its greenlet now.
    sub = hub.subscribe(device, on_drop=_shutdown(request.environ, socket.SHUT_RDWR), keepalive_s=cfg.web.keepalive_s)
    if sub is None:
        abort(503, "too many open streams on this worker; retry later")
    # A stream the server ends also ends its connection, not a keep-alive wait for another request.
    end = _shutdown(request.environ, socket.SHUT_RD)
    body = _frames(hub, sub, after, cfg.database.target, cfg.web.keepalive_s, end, only)
    response = Response(body, mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    response.call_on_close(lambda: hub.unsubscribe(sub))  # also when the body is never iterated
    return response


def _catch_up(
    db_path: str | Path, after: int, device: str | None, only: SiteFilter | None
) -> Iterator[tuple[int, bytes | None]]:
    """Stored events after `after`, from the store's chunked event reader (no read transaction stays open);
    the frame None for one the client may not see (its id still counts as sent)."""
    with closing(store.connect(db_path, readonly=True)) as conn:
        after = min(after, store.last_event_id(conn))  # an id from another database: start from its end
    for event in store.read_events(db_path, after, device=device):
        shown = only is None or only.event(event)
        yield event["id"], sse.event(event["id"], dumps(event)) if shown else None


def _frames(
    hub: Hub,
    sub: Subscriber,
    after: int | None,
    db_path: str | Path,
    keepalive_s: float,
    end: Callable[[], None] | None = None,
    only: SiteFilter | None = None,
) -> Iterator[bytes]:
    """The stream body: connected, catch-up, then live frames with no id sent twice (`only`: a site limit's)."""
    try:
        yield sse.connected()
        sent = after or 0
        if after is not None:
            for event_id, frame in _catch_up(db_path, after, sub.device, only):
                sent = event_id
                if frame is not None:
                    yield frame
        yield from _live(sub, sent, keepalive_s, end, only)
    finally:
        hub.unsubscribe(sub)


def _live(
    sub: Subscriber, sent: int, keepalive_s: float, end: Callable[[], None] | None, only: SiteFilter | None = None
) -> Iterator[bytes]:
    """Live frames after `sent`, batched when several wait, and a keepalive when idle.

    The hub wakes waiting clients every keepalive_s / 2 (one timer for all, none per client): an
    idle stream sends its keepalive at the first wake-up 3/4 of keepalive_s after its last write,
    so every 3/4 to 5/4 of keepalive_s; a stream with events to send needs none.
    """
    idle_after = 0.75 * keepalive_s
    last_write = time.monotonic()
    while True:
        items = sub.take(MAX_BATCH)
        if not items:
            sub.wait()
            items = sub.take(MAX_BATCH)
        if sub.closed:
            if end is not None:
                end()
            return  # dropped (fell behind) or the worker is stopping: the client resumes by id
        batch, sent = _unsent(items, sent, None if only is None else only.ids())
        now = time.monotonic()
        if not batch and now - last_write >= idle_after:
            batch.append(sse.keepalive())
        if batch:
            last_write = now
            yield b"".join(batch)


def _unsent(items: list[Item], sent: int, mine: frozenset[str] | None = None) -> tuple[list[bytes], int]:
    """The frames of ids after `sent` (the catch-up's are skipped) and the new `sent`; after RESTART_ID, any id.

    `mine`: a site-limited client's device ids; then only their frames and those of no device ("") are sent.
    """
    batch = []
    for event_id, device, frame in items:
        if event_id > sent or event_id == RESTART_ID:
            if mine is None or not device or device in mine:
                batch.append(frame)
            sent = event_id
    return batch, sent
